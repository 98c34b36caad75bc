/**
 * How Keel estimates the input tokens of a request before it is sent, to reserve budget for it.
 * The estimator is deliberately simple and documented: one token per four characters of the
 * request as it is serialized (a string as is, anything else as JSON), rounded up — the usual
 * rule of thumb for English text with OpenAI's and Anthropic's tokenizers. Text that tokenizes
 * worse (code, non-Latin scripts) can count more tokens than this: the excess is charged at
 * settlement and reported as `budget.overrun`; declare `estimate.inputTokens` to reserve more.
 */

/** Characters counted as one token by {@link estimateTokens}. */
export const CHARS_PER_TOKEN = 4;

/**
 * Estimated input tokens of `request`: its length in characters (a string as is, anything else
 * serialized as JSON) divided by {@link CHARS_PER_TOKEN}, rounded up. A value JSON cannot
 * serialize (a cycle, a BigInt) counts as 0, so the caller's declared estimate applies.
 *
 * @example
 * estimateTokens('Who issued this invoice?'); // 6
 * estimateTokens([{ role: 'user', content: 'hi' }]); // 8 (32 characters of JSON)
 */
export function estimateTokens(request: unknown): number {
  let text: string | undefined;
  if (typeof request === 'string') text = request;
  else {
    try {
      text = JSON.stringify(request);
    } catch {
      text = undefined;
    }
  }
  return text === undefined ? 0 : Math.ceil(text.length / CHARS_PER_TOKEN);
}
