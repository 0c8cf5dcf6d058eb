// G.711 μ-law to float samples with a 256-entry table: bit-exact, synchronous, no WebCodecs
// (AudioDecoder is missing in some browsers and needs a secure context; the table needs
// nothing). Output is in [-1, 1): linear / 32768, as callstream's codec decodes it.
const table = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const u = ~i & 0xff;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  let magnitude = ((mantissa << 3) + 0x84) << exponent;
  magnitude -= 0x84;
  table[i] = ((u & 0x80) ? -magnitude : magnitude) / 32768;
}

export function decodeUlaw(bytes) {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i]];
  return out;
}
