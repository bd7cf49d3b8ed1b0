/**
 * Python's `str.strip` family, which chat templates use (transformers renders them in Python): they
 * differ from JavaScript's `trim` on a few code points (U+FEFF is not whitespace to Python; U+001C–
 * U+001F and U+0085 are), and `strip(chars)` takes a character set.
 */

const PYTHON_WHITESPACE = new Set(
  "\t\n\v\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000",
);

function isStripped(char: string, chars: string | undefined): boolean {
  return chars === undefined ? PYTHON_WHITESPACE.has(char) : chars.includes(char);
}

/** Python's `text.lstrip(chars)` (whitespace when `chars` is undefined). */
export function pyLstrip(text: string, chars?: string): string {
  let start = 0;
  while (start < text.length && isStripped(text[start]!, chars)) start++;
  return text.slice(start);
}

/** Python's `text.rstrip(chars)`. */
export function pyRstrip(text: string, chars?: string): string {
  let end = text.length;
  while (end > 0 && isStripped(text[end - 1]!, chars)) end--;
  return text.slice(0, end);
}

/** Python's `text.strip(chars)`. */
export function pyStrip(text: string, chars?: string): string {
  return pyRstrip(pyLstrip(text, chars), chars);
}
