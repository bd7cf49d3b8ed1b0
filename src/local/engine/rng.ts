/**
 * Seeded pseudo-random numbers. Every random choice of the engine (base weights, LoRA init,
 * sampling) flows through `Rng`, so a seed fully determines the result.
 *
 * Seeds are 64-bit (callers may pass any JS integer or a bigint, as the Tinker API allows
 * 64-bit sampling seeds). SplitMix64 expands the seed into the 128-bit state of xoshiro128**,
 * whose 32-bit operations run at full speed on `Math.imul` — BigInt arithmetic is only used
 * while seeding, never per draw.
 */

import { EngineError } from "./errors.js";

const UINT64_MASK = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

/** A seed as the engine accepts it: any integer number or bigint, reduced modulo 2^64. */
export type Seed = number | bigint;

/** Reduces a number or bigint seed to an unsigned 64-bit bigint. */
export function toSeed64(seed: Seed): bigint {
  if (typeof seed === "bigint") return BigInt.asUintN(64, seed);
  if (!Number.isFinite(seed) || !Number.isInteger(seed)) {
    throw new EngineError(`seed must be an integer, got ${seed}`);
  }
  return BigInt.asUintN(64, BigInt(seed));
}

/** One SplitMix64 output for the given counter value; a strong 64-bit mixing function. */
function splitMix64(counter: bigint): bigint {
  let z = (counter + GOLDEN_GAMMA) & UINT64_MASK;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & UINT64_MASK;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & UINT64_MASK;
  return z ^ (z >> 31n);
}

/**
 * Derives an independent child seed from a parent seed and a stream label, e.g. one stream per
 * sample of a request or per weight matrix. Mixing (not adding) keeps neighbouring labels of
 * neighbouring seeds from producing overlapping streams.
 */
export function deriveSeed(parent: Seed, label: number): bigint {
  const mixedParent = splitMix64(toSeed64(parent));
  return splitMix64(mixedParent ^ BigInt.asUintN(64, BigInt(label)));
}

/** A fresh, unpredictable 64-bit seed (used when the caller gives none). */
export function randomSeed(): bigint {
  const words = new Uint32Array(2);
  if (typeof globalThis.crypto?.getRandomValues === "function") {
    globalThis.crypto.getRandomValues(words);
  } else {
    words[0] = Math.floor(Math.random() * 2 ** 32);
    words[1] = Math.floor(Math.random() * 2 ** 32);
  }
  return (BigInt(words[0]) << 32n) | BigInt(words[1]);
}

/**
 * Maps a name (e.g. a base model name) to a fixed 32-bit seed with FNV-1a over its UTF-8 bytes,
 * so "tiny-base" always means the same weights in every process and runtime.
 */
export function hashSeed(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function rotl32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** xoshiro128** seeded through SplitMix64. Not cryptographic; fast and well distributed. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Second Box–Muller output, kept so each pair of uniforms yields two normals. */
  private spareNormal: number | null = null;

  constructor(seed: Seed) {
    const seed64 = toSeed64(seed);
    const first = splitMix64(seed64);
    const second = splitMix64(seed64 + 1n);
    this.s0 = Number(first & 0xffffffffn) | 0;
    this.s1 = Number(first >> 32n) | 0;
    this.s2 = Number(second & 0xffffffffn) | 0;
    this.s3 = Number(second >> 32n) | 0;
    // The all-zero state is the one fixed point of xoshiro; SplitMix64 practically never yields
    // it, but guarding costs nothing.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const result = Math.imul(rotl32(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl32(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with the full 53 bits of precision. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** Standard normal via Box–Muller. */
  nextNormal(): number {
    if (this.spareNormal !== null) {
      const spare = this.spareNormal;
      this.spareNormal = null;
      return spare;
    }
    const u1 = 1 - this.nextFloat(); // (0, 1]: keeps log() finite
    const u2 = this.nextFloat();
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** Fills `out` with independent N(0, std²) draws and returns it. */
  fillNormal(out: Float64Array, std: number): Float64Array {
    for (let i = 0; i < out.length; i++) out[i] = this.nextNormal() * std;
    return out;
  }
}
