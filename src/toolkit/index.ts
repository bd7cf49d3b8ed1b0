/**
 * tinker-ts/toolkit: the training toolkit on top of the SDK — chat renderers, datum builders,
 * evaluation, the pipelined training loop, checkpoint housekeeping, RL plumbing, supervised
 * fine-tuning (datasets, schedules, the `trainSupervised` driver) and DPO. A separate entry
 * so that apps which only sample or train pay nothing for it; web standards only, like the SDK.
 */
export * from "./checkpoints.js";
export * from "./datum.js";
export * from "./evaluation.js";
export * from "./loop.js";
export * from "./preference/dpo.js";
export * from "./renderers/index.js";
export * from "./rl/env.js";
export * from "./rl/episode-data.js";
export * from "./rl/kl.js";
export * from "./rl/metrics.js";
export * from "./rl/options.js";
export * from "./rl/rollouts.js";
export * from "./rl/staleness.js";
export * from "./rl/train.js";
export * from "./rl.js";
export * from "./supervised.js";
