/**
 * Strings decoded from protobuf are exactly the bytes that were sent. protobuf-es decodes
 * UTF-8 with the WHATWG TextDecoder, whose default drops a leading U+FEFF (byte order mark):
 * `"\ufeffSBX"` arrived as `"SBX"` and acted on chain SBX. A name must be what the client
 * sent, or be refused by the validators; so the decoders here keep the mark (`ignoreBOM`).
 * Invalid UTF-8 still throws where protobuf asks for strict decoding (proto3 strings).
 *
 * protobuf-es reads this configuration per process (a global hook), so every message decoded
 * in this process, requests and responses, is decoded exactly.
 */
import { configureTextEncoding } from '@bufbuild/protobuf/wire';

let configured = false;

/** Makes protobuf-es keep a leading U+FEFF when it decodes strings. Idempotent. */
export function decodeStringsExactly(): void {
  if (configured) return;
  configured = true;
  const encoder = new TextEncoder();
  const lenient = new TextDecoder('utf-8', { ignoreBOM: true });
  const strict = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });
  configureTextEncoding({
    encodeUtf8: (text: string) => encoder.encode(text),
    decodeUtf8: (bytes: Uint8Array, validate?: boolean) => (validate ? strict : lenient).decode(bytes),
    checkUtf8: (text: string) => {
      try {
        encodeURIComponent(text);
        return true;
      } catch {
        return false;
      }
    },
  });
}
