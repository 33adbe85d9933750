import type { z } from "zod";
import type { StateStore } from "../store.js";

/** What opening a store may need besides its options. */
export interface OpenContext {
  /** The directory of state.json: relative paths in options are relative to it. */
  directory: string;
  /** The laboratory home, for caches. */
  home: string;
}

/** A state provider/service pair: the options it takes and how it opens a store. */
export interface StateProviderDefinition<Options> {
  provider: string;
  service: string;
  options: z.ZodType<Options>;
  open(options: Options, context: OpenContext): StateStore;
  /** The files or directories on this machine that hold the values, which apps must not read. */
  localPaths?(options: Options, context: OpenContext): string[];
}

/** Keeps each definition's options type while listing them together. */
export function defineStateProvider<Options>(
  definition: StateProviderDefinition<Options>,
): StateProviderDefinition<Options> {
  return definition;
}
