// Images for the engine, prepared in the worker. The engine takes the encoded file and Go
// decodes it exactly as the CPU reference does, so a file Go can read (PNG, JPEG, GIF,
// WebP) of a reasonable size goes through untouched. Anything larger — a 50-megapixel
// photo — is decoded and downscaled here by the browser to at most maxImageSide pixels on
// the long side and re-encoded as PNG, so Go never decodes a huge image (the model sees
// 490×490 anyway). Other formats the browser decodes (AVIF, BMP, …) are re-encoded too.
//
// The browser applies a JPEG's EXIF orientation when it decodes (as the preview does);
// Go, like PIL, does not. A small rotated JPEG therefore reaches the model as stored.

import { CogVLMError } from './errors.js';
import { bytes } from './format.js';

export const maxImageSide = 2048;
/** Files up to this size in a format Go reads are passed as they are. */
const maxPassThroughBytes = 32 << 20;

/** sniffFormat names the format of an image file from its first bytes, or null. */
export function sniffFormat(head) {
  const at = (offset, ...values) => values.every((v, i) => head[offset + i] === v);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'gif';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  return null;
}

function describe(blob) {
  const name = blob.name ? `"${blob.name}"` : 'the image';
  return `${name} (${blob.type || 'unknown type'}, ${bytes(blob.size)})`;
}

/**
 * imageBytes turns the API's `image` (Blob, File, ImageBitmap or null) into the bytes of
 * an image file for the engine, or null for none.
 */
export async function imageBytes(image) {
  if (image == null) return null;
  if (image instanceof ImageBitmap) return encodePNG(image);
  if (!(image instanceof Blob)) {
    throw new CogVLMError('bad-input', `image must be a Blob, File, ImageBitmap or null, not ${Object.prototype.toString.call(image)}`);
  }
  if (image.size === 0) throw new CogVLMError('bad-input', `${describe(image)} is empty`);
  const format = sniffFormat(new Uint8Array(await image.slice(0, 16).arrayBuffer()));
  let bitmap;
  try {
    // No colour management: Go reads the stored values, and so must a re-encoded copy.
    bitmap = await createImageBitmap(image, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (err) {
    throw new CogVLMError('bad-input', `${describe(image)} is not an image this browser can decode (${err.message}); use a PNG, JPEG, GIF or WebP file`);
  }
  try {
    if (format && Math.max(bitmap.width, bitmap.height) <= maxImageSide && image.size <= maxPassThroughBytes) {
      return new Uint8Array(await image.arrayBuffer());
    }
    return await encodePNG(bitmap);
  } finally {
    bitmap.close();
  }
}

/** encodePNG draws a bitmap, downscaled to maxImageSide if larger, and encodes it as PNG. */
async function encodePNG(bitmap) {
  if (!bitmap.width || !bitmap.height) throw new CogVLMError('bad-input', `the image is ${bitmap.width}×${bitmap.height} pixels`);
  const scale = Math.min(1, maxImageSide / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const resized = scale < 1 ? await createImageBitmap(bitmap, { resizeWidth: width, resizeHeight: height, resizeQuality: 'high' }) : bitmap;
  try {
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext('2d').drawImage(resized, 0, 0);
    const png = await canvas.convertToBlob({ type: 'image/png' });
    return new Uint8Array(await png.arrayBuffer());
  } finally {
    if (resized !== bitmap) resized.close();
  }
}
