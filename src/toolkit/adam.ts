/**
 * The toolkit's check of AdamW settings given as options (not exported from the toolkit entry).
 * Options objects are often spread from optional settings, so a field present with the value
 * `undefined` means "not given" here and is left out before `validateAdamParams` sees it.
 */
import { validateAdamParams } from "../lib/validate.js";
import type { AdamParams } from "../wire/types.js";

export function validateGivenAdam(adam: AdamParams): void {
  validateAdamParams(Object.fromEntries(Object.entries(adam).filter(([, value]) => value !== undefined)));
}
