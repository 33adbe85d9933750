import type { Readable } from "node:stream";
import type { LabtestError } from "../errors.js";
import type { EventSink } from "./protocol.js";
import { LaboratoryError, type StreamLine } from "./wire.js";

/** What a transport says when a streamed answer goes wrong, in its own terms (an origin, a host). */
export interface StreamFailures {
  /**
   * The stream ended before its result or error line; a transport that learns why only later
   * (ssh's exit status and message) answers with a promise.
   */
  lost: (cause?: unknown) => LabtestError | Promise<LabtestError>;
  /** A line that is not JSON: whatever answered is not a laboratory of this labtest's version. */
  garbled: (line: string) => LabtestError;
}

/**
 * Reads a streamed answer (see wire.ts, StreamLine), as HTTPS and SSH both carry it: each event
 * to `events` as its line arrives, then the result, or the laboratory's error raised again as a
 * LaboratoryError. `source` is destroyed when a line is garbled: nothing after it can be trusted.
 */
export function readAnswerStream(
  source: Readable,
  events: EventSink | undefined,
  failures: StreamFailures,
): Promise<unknown> {
  source.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    let pending = "";
    let ended = false;
    const finish = (settle: () => void) => {
      ended = true;
      settle();
    };
    const cut = (cause?: unknown) => finish(() => Promise.resolve(failures.lost(cause)).then(reject, reject));
    const take = (line: string) => {
      if (!line.trim() || ended) return;
      const parsed = parseJson(line) as StreamLine | undefined;
      if (parsed !== undefined && "event" in parsed) return events?.(parsed.event);
      if (parsed === undefined) {
        source.destroy();
        finish(() => reject(failures.garbled(line)));
      } else if ("result" in parsed) finish(() => resolve(parsed.result));
      else finish(() => reject(new LaboratoryError(parsed.error)));
    };
    source.on("data", (chunk: string) => {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) take(line);
    });
    source.on("end", () => {
      take(pending);
      if (!ended) cut();
    });
    // A stream cut short (a connection reset, a process gone) closes without its end.
    source.on("error", (error) => !ended && cut(error));
    source.on("close", () => !ended && cut());
  });
}

/** A JSON answer, or a line of a streamed one; undefined when it is not JSON (not a laboratory answering). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
