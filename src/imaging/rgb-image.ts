/** 8-bit RGB pixels, the form every image takes between reading and the model's float input. */
export interface RgbImage {
  /** Interleaved RGB, row-major, 8 bits per channel. */
  pixels: Uint8Array;
  width: number;
  height: number;
}
