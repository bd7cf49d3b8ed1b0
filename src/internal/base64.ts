/**
 * Bytes as a binary string, one char per byte. Spread in slices: one spread of a long array
 * exceeds the engine's argument limit (a RangeError past ~100k values on V8).
 */
export function bytesToBinaryString(bytes: Uint8Array): string {
  const chunk = 0x8000;
  if (bytes.length <= chunk) return String.fromCharCode(...bytes);
  let binary = "";
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return binary;
}

/** Standard base64 without `Buffer`, so it works in every runtime. */
export function bytesToBase64(bytes: Uint8Array): string {
  return btoa(bytesToBinaryString(bytes));
}

export function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
