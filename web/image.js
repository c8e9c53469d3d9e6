// Images for the engine, prepared in the worker, decoded once per question, by the engine.
// The engine takes the encoded file and Go decodes it exactly as the CPU reference does, so
// a file Go can read (PNG, JPEG, GIF, WebP) goes through untouched and undecoded here: the
// engine reads its size from the header, and refuses one larger than its maxImageSide
// (the load summary's; 2048) with the code image-too-large before decoding a pixel. Only
// then is it decoded here by the browser, downscaled to maxImageSide pixels on the long
// side and re-encoded as PNG (reencode), so Go never decodes a huge image (the model sees
// 490×490 anyway). Other formats the browser decodes (AVIF, BMP, …) and ImageBitmaps are
// re-encoded the same way at once.
//
// The browser applies a JPEG's EXIF orientation when it decodes (as the preview does);
// Go, like PIL, does not. A rotated JPEG that goes through untouched therefore reaches the
// model as stored, and its boxes are in the stored orientation.

import { CogVLMError } from './errors.js';
import { bytes } from './format.js';

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
 * imageFile turns the API's `image` (Blob, File, ImageBitmap or null) into what the engine
 * gets: {bytes, width, height}, the bytes of an image file and, when this function decoded
 * the image, its size as given (before any downscaling; null when the file went through
 * untouched: the engine reads it from the header). null for no image. maxSide is the
 * engine's maxImageSide, for what is re-encoded.
 */
export async function imageFile(image, maxSide) {
  if (image == null) return null;
  if (image instanceof ImageBitmap) return encodePNG(image, maxSide);
  if (!(image instanceof Blob)) {
    throw new CogVLMError('bad-input', `image must be a Blob, File, ImageBitmap or null, not ${Object.prototype.toString.call(image)}`);
  }
  if (image.size === 0) throw new CogVLMError('bad-input', `${describe(image)} is empty`);
  if (sniffFormat(new Uint8Array(await image.slice(0, 16).arrayBuffer()))) {
    return { bytes: new Uint8Array(await image.arrayBuffer()), width: null, height: null };
  }
  return reencode(image, maxSide);
}

/**
 * reencode decodes an image Blob in the browser and encodes it as PNG, downscaled to
 * maxSide pixels on the long side if larger: {bytes, width, height}, the size before
 * downscaling. For a format Go does not read, and for a file the engine refused as
 * image-too-large.
 */
export async function reencode(image, maxSide) {
  let bitmap;
  try {
    // No colour management: Go reads the stored values, and so must a re-encoded copy.
    bitmap = await createImageBitmap(image, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (err) {
    throw new CogVLMError('bad-input', `${describe(image)} is not an image this browser can decode (${err.message}); use a PNG, JPEG, GIF or WebP file`);
  }
  try {
    return await encodePNG(bitmap, maxSide);
  } finally {
    bitmap.close();
  }
}

/** encodePNG draws a bitmap, downscaled to maxSide if larger, and encodes it as PNG. */
async function encodePNG(bitmap, maxSide) {
  if (!bitmap.width || !bitmap.height) throw new CogVLMError('bad-input', `the image is ${bitmap.width}×${bitmap.height} pixels`);
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const resized = scale < 1 ? await createImageBitmap(bitmap, { resizeWidth: width, resizeHeight: height, resizeQuality: 'high' }) : bitmap;
  try {
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext('2d').drawImage(resized, 0, 0);
    const png = await canvas.convertToBlob({ type: 'image/png' });
    return { bytes: new Uint8Array(await png.arrayBuffer()), width: bitmap.width, height: bitmap.height };
  } finally {
    if (resized !== bitmap) resized.close();
  }
}
