// The protocol's version and bounds without its schemas: the commands write them into requests
// and check their arguments against them, and importing them must not load zod and the request
// schemas (protocol.ts) before a command runs.

/** The protocol version every request names; a laboratory refuses one it does not speak. */
export const PROTOCOL_VERSION = 1 as const;

/** The longest a duration may be (a token's life, how far back an audit reads): 100 years. */
export const MAX_DURATION_SECONDS = 100 * 365 * 86_400;

/** The largest bundle a laboratory takes: a repository's whole history travels in the first one. */
export const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;
