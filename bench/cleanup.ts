// Undoing what a bench made, whatever ends it: its last line, an error, Ctrl-C or SIGTERM.
import { constants } from "node:os";
import type { CleanupRegistrar } from "../test/support/sshd.js";

/**
 * Runs `bench` with a registrar for what it makes. Everything registered is undone once, the
 * last registered first: when `bench` ends or fails, or on SIGINT or SIGTERM (the process then
 * exits 128 + the signal's number). A cleanup that fails is said and the others still run.
 */
export async function withCleanup<T>(bench: (onCleanup: CleanupRegistrar) => Promise<T>): Promise<T> {
  const cleanups: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = () => {
    cleaning ??= (async () => {
      for (const cleanup of cleanups.reverse())
        await cleanup().catch((error: unknown) => {
          console.error("a cleanup of the bench failed:", error);
          process.exitCode = 1;
        });
    })();
    return cleaning;
  };
  // A second signal (Ctrl-C twice, or the terminal's and a parent's) waits for the same cleanup.
  const interrupted = (signal: NodeJS.Signals) => {
    console.error(`${signal}: removing what the bench made …`);
    void cleanUp().finally(() => process.exit(128 + constants.signals[signal]));
  };
  process.on("SIGINT", interrupted);
  process.on("SIGTERM", interrupted);
  try {
    return await bench((cleanup) => void cleanups.push(cleanup));
  } finally {
    await cleanUp();
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
  }
}
