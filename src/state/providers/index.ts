import type { StateProviderDefinition } from "./definition.js";
import { localDirectory } from "./directory.js";
import { localFile } from "./file.js";
import { redisRedis } from "./redis.js";
import { awsS3 } from "./s3.js";
import { localScript } from "./script.js";

/** Every state provider/service pair labtest knows; a new backend is one file and one line here. */
export const STATE_PROVIDERS: ReadonlyArray<StateProviderDefinition<unknown>> = [
  localFile,
  localDirectory,
  localScript,
  awsS3,
  redisRedis,
];
