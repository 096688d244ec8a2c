/**
 * Protocol-buffer wire format: splitting a message into its fields (byte ranges) and writing fields.
 * The export edits ONNX files at this level so that every field it does not touch, including fields
 * newer than onnx-proto's schema (onnx-proto 8 knows IR versions up to 7 and drops what it does not know when
 * it re-encodes), is copied byte for byte. Written by hand: protobufjs's
 * Reader can skip fields but does not report their byte ranges.
 */
export interface WireField {
  no: number;
  wireType: number;
  /** Whole field, tag included: bytes[start, end). */
  start: number;
  end: number;
  /** Payload of a length-delimited field: bytes[dataStart, dataEnd). */
  dataStart: number;
  dataEnd: number;
}

export class WireError extends Error {}

function readVarint(buf: Uint8Array, pos: number, end: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new WireError('truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
  throw new WireError('varint too long');
}

export function parseFields(buf: Uint8Array, start = 0, end = buf.length): WireField[] {
  const fields: WireField[] = [];
  let pos = start;
  while (pos < end) {
    const fStart = pos;
    const [tag, p1] = readVarint(buf, pos, end);
    pos = p1;
    const no = Math.floor(tag / 8), wireType = tag % 8;
    if (no === 0) throw new WireError('field number 0');
    let dataStart = pos, dataEnd = pos;
    switch (wireType) {
      case 0: [, pos] = readVarint(buf, pos, end); dataEnd = pos; break;
      case 1: pos += 8; dataEnd = pos; break;
      case 5: pos += 4; dataEnd = pos; break;
      case 2: {
        const [len, p2] = readVarint(buf, pos, end);
        dataStart = p2;
        pos = p2 + len;
        dataEnd = pos;
        break;
      }
      default: throw new WireError(`unsupported wire type ${wireType}`);
    }
    if (pos > end) throw new WireError('field runs past the end of its message');
    fields.push({ no, wireType, start: fStart, end: pos, dataStart, dataEnd });
  }
  return fields;
}

export function encodeVarint(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

export function lengthDelimited(no: number, payload: Uint8Array): Uint8Array[] {
  return [encodeVarint(no * 8 + 2), encodeVarint(payload.length), payload];
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function fieldString(buf: Uint8Array, f: WireField): string {
  return new TextDecoder().decode(buf.subarray(f.dataStart, f.dataEnd));
}
