import { PassThrough } from "node:stream";
import type { FastifyReply } from "fastify";
import { LabtestError } from "../errors.js";
import type { EventSink } from "../laboratory/protocol.js";
import { type StreamLine, type WireError, wireError } from "../laboratory/wire.js";
import { maskingStream, maskSecrets } from "../secrets/mask.js";

// Everything the server answers passes through here, masked: the client never revealed the
// secrets the laboratory did (it has no key to), so it cannot mask them when it prints.

/**
 * The HTTP status of an error: its own when it has one (401, 403, 409, 429), 400 for a usage or
 * configuration mistake (exit code 2), 422 for any other error a user can act on, 500 for a bug.
 */
export function httpStatus(error: unknown): number {
  const own = (error as { status?: unknown } | null)?.status;
  if (error instanceof LabtestError) {
    if (typeof own === "number") return own;
    return error.exitCode === 2 ? 400 : 422;
  }
  return 500;
}

/** Answers `error` as a plain status and `{error: WireError}`. */
export function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  const retryAfter = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  if (typeof retryAfter === "number") reply.header("retry-after", String(retryAfter));
  return reply.code(httpStatus(error)).send({ error: answerError(error) });
}

/** How a streamed answer is framed: one JSON per line, or server-sent events for a browser. */
export type StreamFraming = "ndjson" | "sse";

const CONTENT_TYPES: Record<StreamFraming, string> = {
  ndjson: "application/x-ndjson",
  sse: "text/event-stream",
};

/**
 * Answers with a stream: the events `operation` reports as they come, then its result or its
 * error. The status is 200 from the first byte on, so an error arrives as the stream's last line.
 */
export function sendStream(
  reply: FastifyReply,
  framing: StreamFraming,
  operation: (events: EventSink) => Promise<unknown>,
): FastifyReply {
  const body = new PassThrough();
  answerLines(operation, (line) =>
    body.write(framing === "sse" ? `data: ${JSON.stringify(line)}\n\n` : `${JSON.stringify(line)}\n`),
  ).finally(() => body.end());
  return reply
    .code(200)
    .header("content-type", CONTENT_TYPES[framing])
    .header("cache-control", "no-store")
    .send(body);
}

/**
 * Carries out `operation` and says what happens as StreamLines, over HTTPS (sendStream) and SSH
 * (stdio.ts) alike: its events as they come, then exactly one line, its result or its error.
 * A program's output is masked as a stream of its own per request, so that a secret cut across
 * its writes is masked too; what that holds back is written before the last line.
 */
export function answerLines(
  operation: (events: EventSink) => Promise<unknown>,
  write: (line: StreamLine) => void,
): Promise<void> {
  const events = maskedEvents((event) => write({ event }));
  return operation(events.sink).then(
    (result) => {
      events.end();
      write({ result: answerBody(result) });
    },
    (error: unknown) => {
      events.end();
      write({ error: answerError(error) });
    },
  );
}

/**
 * A result as it is answered, secrets masked: a void one is {}; null (status of no experiment)
 * is an answer and stays null.
 */
export function answerBody(result: unknown): unknown {
  return masked(result === undefined ? {} : result);
}

/** An error as it is answered, secrets masked: its message and problems may quote a program's output. */
export function answerError(error: unknown): WireError {
  return masked(wireError(error)) as WireError;
}

/** `value` as JSON carries it, every string in it masked (a secret JSON would escape is masked before). */
function masked(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (_key, each: unknown) =>
    typeof each === "string" ? maskSecrets(each) : each,
  );
}

/** Events to `sink` with secrets masked; `end` writes what the output streams held back. */
function maskedEvents(sink: EventSink): { sink: EventSink; end: () => void } {
  const output = {
    stdout: maskingStream((text) => sink({ type: "stdout", text })),
    stderr: maskingStream((text) => sink({ type: "stderr", text })),
  };
  return {
    sink: (event) => {
      if (event.type === "step") sink({ type: "step", text: maskSecrets(event.text) });
      else output[event.type].write(event.text);
    },
    end: () => {
      output.stdout.end();
      output.stderr.end();
    },
  };
}
