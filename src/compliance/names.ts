/**
 * Person-name detectors. Names have no checksum, so these favour precision over recall: a
 * configured list (matched whole-word, case-insensitively), and three contexts in which a run of
 * capitalised words is almost always a person — after an honorific (`Dr. Jane Smith`), after a
 * label at the start of a line (`Name: Jane Smith`, `Attn: …`), and alone on the line after a
 * sign-off (`Regards,\nJane`). Internal to `src/compliance`.
 */
import type { Detector } from './detectors.js';

/** Escapes regex syntax characters for a pattern compiled with the `u` flag. */
function escapeForUnicodeRegex(text: string): string {
  return text.replace(/[\^$\\.*+?()[\]{}|/]/g, '\\$&');
}

/** `a` → `[aA]`: one character in either case, when it has exactly one of each. */
function eitherCase(ch: string): string {
  const lo = ch.toLowerCase();
  const up = ch.toUpperCase();
  if (lo !== up && [...lo].length === 1 && [...up].length === 1) return `[${lo}${up}]`;
  return escapeForUnicodeRegex(ch);
}

/**
 * `Jane` → `[jJ][aA][nN][eE]`: case-insensitive without the `i` flag, Unicode-aware. An accented
 * letter also matches its decomposed form (`í` and `i` + U+0301), so a listed name is found in
 * text of either Unicode normal form.
 */
function caseInsensitive(word: string): string {
  let out = '';
  for (const ch of word.normalize('NFC')) {
    const decomposed = ch.normalize('NFD');
    if (decomposed === ch) {
      out += eitherCase(ch);
    } else {
      const [base = '', ...marks] = [...decomposed];
      out += `(?:${eitherCase(ch)}|${eitherCase(base)}${marks.map(escapeForUnicodeRegex).join('')})`;
    }
  }
  return out;
}

const normaliseName = (v: string): string => v.normalize('NFC').toLowerCase().replace(/\s+/g, ' ').trim();

/** Boundary for names: not inside a longer word. */
const NOT_WORD_BEFORE = String.raw`(?<![\p{L}\p{N}_])`;
const NOT_WORD_AFTER = String.raw`(?![\p{L}\p{N}_])`;

/**
 * A detector for the configured names; undefined when the list is empty. Longer names come first,
 * so `Jane Doe` wins over `Jane`.
 */
export function listedNames(list: readonly string[]): Detector | undefined {
  const alternatives = [...new Set(list.map((n) => n.trim()).filter((n) => n.length > 0))]
    .sort((a, b) => b.length - a.length)
    .map((n) =>
      n
        .split(/\s+/)
        .map(caseInsensitive)
        .join(String.raw`[ \t]+`),
    );
  if (alternatives.length === 0) return undefined;
  const body = alternatives.join('|');
  return {
    kind: 'name',
    source: `${NOT_WORD_BEFORE}(?:${body})${NOT_WORD_AFTER}`,
    trigger: body,
    normalise: normaliseName,
  };
}

/** A capital letter, with combining accents when the text is decomposed (NFD). */
const UP = String.raw`\p{Lu}\p{M}*`;
/** Lower-case letters, with combining accents. */
const LOWS = String.raw`(?:\p{Ll}\p{M}*)+`;
/** Jane, McDonald, O'Brien, D’Angelo, Smith-Jones, Élodie, María, Øyvind. */
const NAME_WORD = String.raw`${UP}(?:${LOWS}(?:${UP}${LOWS})?|['’]${UP}${LOWS})(?:-${UP}${LOWS})*`;
/** Particles of family names: van der, von, de la, del, da, dos, di, du, le, bin, ibn, al, y, Ó, Ní. */
const PARTICLE = String.raw`(?:van|von|de|da|das|do|dos|del|della|der|den|di|du|le|la|ter|ten|bin|ibn|al|el|y|e|Ó|Ní|Nic|Mac|Ui|Uí)`;
/** Jane Smith, Jane Q. Smith, Ludwig van Beethoven, María José García de la Fuente. */
const NEXT_WORD = String.raw`[ \t]+(?:${UP}\.[ \t]+)?(?:${PARTICLE}[ \t]+){0,2}${NAME_WORD}`;
/** Up to five words: given names, middle names, one or two family names. */
const FULL_NAME = String.raw`${NAME_WORD}(?:${NEXT_WORD}){0,4}`;

/**
 * Capitalised words that are not names in these contexts: companies, departments, addresses,
 * document words. A candidate containing one is rejected.
 */
const NOT_NAMES = new Set(
  (
    'inc ltd llc llp plc gmbh ag sa sarl bv corp corporation company co group holdings team department ' +
    'dept service services support office bank suite street road avenue lane drive floor building ' +
    'invoice order account accounts payment payments payable receivable customer client vendor ' +
    'supplier manager finance sales billing procurement purchasing the and of for your our total ' +
    'amount date number nr no nummer rechnung bestellung kunde firma abteilung team gmbh numéro facture ' +
    'commande société service servicio cliente pedido factura all everyone there world friends ' +
    'colleagues folks sir madam madame team members user users admin administrator hiring recruiter ' +
    'valued partner partners sirs'
  ).split(' '),
);

function acceptName(match: string): number {
  for (const word of match.split(/[ \t]+/)) {
    if (NOT_NAMES.has(word.toLowerCase().replace(/\.$/, ''))) return 0;
  }
  return match.length;
}

/** English, German, Spanish, French, Italian honorifics; `M.` (Monsieur) only with its dot. */
const HONORIFICS = String.raw`Mr|Mrs|Ms|Miss|Mx|Dr|Dra|Prof|Sir|Dame|Herr|Frau|Sr|Sra|Srta|Don|Doña|Dña|Mme|Mlle|Sig|Sig\.ra|Dott|Dott\.ssa`;

const afterHonorific: Detector = {
  kind: 'name',
  source: String.raw`(?<![\p{L}\p{N}_])(?:(?:${HONORIFICS})\.?|M\.)[ \t]+(${FULL_NAME})${NOT_WORD_AFTER}`,
  trigger: String.raw`Mr|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Herr|Frau|Sr|Don|Doña|Dña|Mme|Mlle|Sig|Dott|M\.`,
  accept: acceptName,
  normalise: normaliseName,
};

const LABELS = [
  '[Nn]ame',
  'NAME',
  '(?:[Ff]ull|[Ff]irst|[Cc]ustomer|[Cc]ontact|[Cc]lient|[Pp]atient|[Ee]mployee|[Cc]ardholder|[Aa]ccount [Hh]older) [Nn]ame',
  '[Cc]ontact(?: [Pp]erson)?',
  '[Aa]ttn',
  'ATTN',
  '[Aa]ttention',
  '[Cc]ardholder',
  '[Aa]ccount [Hh]older',
  '[Ss]igned(?: by)?',
  '(?:[Aa]pproved|[Pp]repared|[Ss]ubmitted|[Rr]equested|[Rr]eviewed) by',
  '[Nn]ombre(?: completo)?',
  '[Nn]om(?: complet)?',
  '[Pp]rénom',
  '[Vv]orname',
  '[Nn]achname',
  '[Nn]ome',
  '[Cc]ognome',
  '[Aa]pellidos',
].join('|');

const afterLabel: Detector = {
  kind: 'name',
  // The label must open the line (or follow punctuation), so `Product Name: Widget Pro` is left alone;
  // at least two words (First Last).
  source: String.raw`(?:^|[\n\r,;|(\[{"'])[ \t]*(?:${LABELS})[ \t]*[:：][ \t]*(${NAME_WORD}(?:${NEXT_WORD}){1,4})${NOT_WORD_AFTER}`,
  trigger: String.raw`(?:${LABELS})[ \t]*[:：]`,
  accept: acceptName,
  normalise: normaliseName,
};

const SIGN_OFFS = [
  '(?:[Bb]est |[Kk]ind |[Ww]arm )?[Rr]egards',
  '[Ss]incerely(?: yours)?',
  '[Yy]ours (?:sincerely|truly|faithfully)',
  '[Tt]hanks',
  '[Tt]hank you',
  '[Cc]heers',
  '[Bb]est',
  '[Rr]espectfully',
  '[Ss]aludos',
  '[Aa]tentamente',
  '[Uu]n saludo',
  '[Cc]ordialement',
  '[Bb]ien à vous',
  '(?:[Mm]it )?(?:[Ff]reundlichen|[Bb]esten|[Vv]iele|[Ll]iebe) [Gg]rüßen?',
  '[Gg]rüße',
  '(?:[Cc]ordiali|[Dd]istinti) [Ss]aluti',
].join('|');

const afterSignOff: Detector = {
  kind: 'name',
  // Alone on the line that follows the sign-off.
  source: String.raw`(?<![\p{L}])(?:${SIGN_OFFS})[ \t]*[,!.]?[ \t]*\r?\n[ \t]*(${FULL_NAME})(?=[ \t]*(?:\r?\n|$))`,
  trigger: String.raw`(?:${SIGN_OFFS})[ \t]*[,!.]?[ \t]*\r?\n`,
  accept: acceptName,
  normalise: normaliseName,
};

const SALUTATIONS = [
  '[Dd]ear',
  '[Hh]ello',
  '[Hh]i',
  '[Hh]allo',
  '[Ll]iebe[r]?',
  '[Ee]stimad[oa]',
  '[Qq]uerid[oa]',
  '[Bb]onjour',
  '[Cc]her',
  '[Cc]hère',
  '[Cc]ar[oa]',
  '[Gg]entile',
].join('|');

const afterSalutation: Detector = {
  kind: 'name',
  // `Dear María José García,` — the name closes the salutation: a comma, `!`, `:` or the line's end.
  source: String.raw`(?<![\p{L}])(?:${SALUTATIONS})[ \t]+(${FULL_NAME})(?=[ \t]*(?:[,!:]|\r?\n|$))`,
  trigger: SALUTATIONS,
  accept: acceptName,
  normalise: normaliseName,
};

/** The heuristic name detectors, most specific first. */
export function heuristicNames(): Detector[] {
  return [afterHonorific, afterLabel, afterSignOff, afterSalutation];
}
