/**
 * Identifiers that must never carry personal data: workflow ids (stored in every event's envelope,
 * ECS `labels.workflow_id`, span attribute `keel.workflow.id`) and the names that become metric
 * labels and span attributes (workflow, agent and node names, task types, breaker names). An
 * identifier the redactor would change is refused with {@link IdentifierPiiError}; the error names
 * the field and the kind of data found, never the value.
 */
import { ConfigError, isConfigError } from '../core/errors.js';
import { createRedactor, type Redactor } from './redact.js';

/** Marker of an {@link IdentifierPiiError}. */
const IDENTIFIER_PII = 'IDENTIFIER_PII';

/**
 * An id or a name carries what the redactor treats as personal data (an email, a phone number, an
 * SSN, a card number, a name, a custom pattern …). Ids and names are stored and exported as they
 * are — they label metrics, spans and log lines — so they must be opaque. A `ConfigError` whose
 * message names the field and the kinds found, never the value itself.
 */
export class IdentifierPiiError extends ConfigError {
  /** Marker for {@link isIdentifierPiiError}. */
  readonly reason = IDENTIFIER_PII;
  constructor(
    field: string,
    /** Kinds of personal data found (`ssn`, `email`, …). */
    readonly kinds: readonly string[],
    fix: string,
  ) {
    super(field, `carries personal data (${kinds.join(', ')}); ${fix}`);
    this.name = 'IdentifierPiiError';
  }
}

/** True when `e` is an {@link IdentifierPiiError}. */
export function isIdentifierPiiError(e: unknown): e is IdentifierPiiError {
  return isConfigError(e) && (e as { reason?: unknown }).reason === IDENTIFIER_PII;
}

/** How to fix a name that carries PII. */
const NAME_FIX =
  'names become metric labels and span attributes, so use an opaque name (e.g. "fraud_check") and keep identifying data in the input';
/** How to fix a workflow id that carries PII. */
const ID_FIX =
  'workflow ids are stored and exported as they are, so use an opaque id (e.g. a UUID, or an HMAC of your own key) and keep identifying data in the input';

/** How to fix a tenant id that carries PII. */
const TENANT_FIX =
  'tenant ids label every event, metric, span and log line of the workflow, so use an internal customer id (e.g. "cust_4821"), never an email address, phone number or name';

/** The default detectors, for names checked where no runtime (and so no redaction config) exists yet. */
let defaults: Redactor | undefined;

/**
 * A separator after a letter (`task_`, `wf-`, `order.`): in an identifier it joins words, but the
 * detectors read it as part of a longer token (`_` is a word character), so it hides what follows.
 */
const WORD_JOINER = /(?<=\p{L})[-_.:/]|_/gu;

/** The kinds `redactor` finds in `text`, read as it is and with its word joiners as spaces, or none. */
function kindsIn(redactor: Redactor, text: string): string[] {
  const kinds = new Set<string>();
  const spaced = text.replace(WORD_JOINER, ' ');
  for (const variant of spaced === text ? [text] : [text, spaced]) {
    const { text: redacted, counts } = redactor.redactString(variant);
    if (redacted !== variant) for (const kind of Object.keys(counts)) kinds.add(kind);
  }
  return [...kinds].sort();
}

/**
 * Throws {@link IdentifierPiiError} when `name` (a workflow, agent or node name, task type or breaker
 * name, found at `field`) carries PII by `redactor`'s detectors, or by the default ones when none is
 * given (definition time, before any runtime exists).
 */
export function assertNameHasNoPii(field: string, name: string, redactor?: Redactor): void {
  const kinds = kindsIn(redactor ?? (defaults ??= createRedactor()), name);
  if (kinds.length > 0) throw new IdentifierPiiError(field, kinds, NAME_FIX);
}

/** Throws {@link IdentifierPiiError} when a workflow id given to `rt.run` carries PII by `redactor`'s detectors. */
export function assertWorkflowIdHasNoPii(workflowId: string, redactor: Redactor): void {
  const kinds = kindsIn(redactor, workflowId);
  if (kinds.length > 0) throw new IdentifierPiiError('workflowId', kinds, ID_FIX);
}

/**
 * Throws {@link IdentifierPiiError} naming `field` (default `RunOptions.tenant`) when a tenant id
 * carries PII by `redactor`'s detectors, or by the default ones when none is given (redaction off,
 * or config time): a tenant id is exported as it is, so it is checked even when redaction is off.
 */
export function assertTenantHasNoPii(tenant: string, redactor?: Redactor, field = 'RunOptions.tenant'): void {
  const kinds = kindsIn(redactor ?? (defaults ??= createRedactor()), tenant);
  if (kinds.length > 0) throw new IdentifierPiiError(field, kinds, TENANT_FIX);
}
