/** Raw 8-bit pixels as a PNG data URI (sharp), enlarged with nearest-neighbour sampling. */
import sharp from 'sharp';

export async function pngDataUri(raw: Uint8Array, w: number, h: number, channels: 1 | 3, scale: number): Promise<string> {
  const buf = await sharp(Buffer.from(raw), { raw: { width: w, height: h, channels } })
    .resize(w * scale, h * scale, { kernel: 'nearest' }).png().toBuffer();
  return `data:image/png;base64,${buf.toString('base64')}`;
}
