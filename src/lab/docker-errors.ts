// The Docker Engine's failures as the user can act on them: an engine that cannot be reached
// (no socket, no permission, nothing listening) and an image the laboratory neither has nor can pull.
import { LabtestError } from "../errors.js";

/** A request the Docker Engine of the laboratory could not serve: what, where, and how to fix it. */
export class DockerEngineError extends LabtestError {}

/** Why a connection to the engine failed, by socket error code, and what to do about it. */
const UNREACHABLE: Record<string, { what: string; fix: string }> = {
  ENOENT: {
    what: "there is no socket there: is dockerd running?",
    fix: "start the engine (systemctl start docker), or set DOCKER_HOST to where it listens",
  },
  EACCES: {
    what: "this user may not use the engine's socket",
    fix: "add the user to the docker group (usermod -aG docker USER, then log in again), or run labtest as root",
  },
  ECONNREFUSED: {
    what: "nothing listens there: the engine is down or restarting",
    fix: "start the engine (systemctl start docker) or wait for its restart, or set DOCKER_HOST to where it listens",
  },
  ETIMEDOUT: {
    what: "the engine's host does not answer",
    fix: "check DOCKER_HOST and the network between this machine and the engine",
  },
  EHOSTUNREACH: {
    what: "the engine's host cannot be reached",
    fix: "check DOCKER_HOST and the network between this machine and the engine",
  },
  ENOTFOUND: {
    what: "the engine's host name does not resolve",
    fix: "check the host name in DOCKER_HOST",
  },
};

/**
 * `error` as the user should see it: a connection to the engine at `engine` (its socket or URL)
 * that failed becomes a DockerEngineError naming the engine and the fix; any other error (the
 * engine answered, if only to refuse) is returned as it is, for its caller to judge.
 */
export function engineError(error: unknown, engine?: string): unknown {
  if (error instanceof DockerEngineError) return error;
  const { code, statusCode, message, address, port } = (error ?? {}) as {
    code?: string;
    statusCode?: number;
    message?: string;
    address?: string;
    port?: number;
  };
  const reason = code === undefined || statusCode !== undefined ? undefined : UNREACHABLE[code];
  if (!reason) return error;
  const at = engine ?? (address ? `${address}${port ? `:${port}` : ""}` : undefined);
  return new DockerEngineError(
    `the Docker engine of the laboratory is unreachable (${message})`,
    [{ where: at ? `the Docker engine at ${at}` : "the Docker engine", ...reason }],
    { cause: error },
  );
}

/** What to tell a user when `error` is the engine not answering at all; undefined for any other error. */
export function engineUnreachable(error: unknown): string | undefined {
  const translated = engineError(error);
  return translated instanceof DockerEngineError ? translated.summary : undefined;
}

/** Where a configuration chose an image, and how to choose another. */
export interface ImageChoice {
  where: string;
  fix: string;
}

/** An image the laboratory does not have and could not pull: which, why, how to get it, where it was chosen. */
export function imageMissing(image: string, error: unknown, chosen: ImageChoice): DockerEngineError {
  const reason = (error as Error).message.split("\n")[0] || "pull failed";
  return new DockerEngineError(
    `image ${image} is not on the laboratory and could not be pulled`,
    [
      {
        where: `image ${image}`,
        what: reason,
        fix: `put it on the laboratory: docker pull ${image} where its registry is reachable, docker load -i ARCHIVE, or docker build -t ${image} DIRECTORY`,
      },
      { where: chosen.where, what: `names ${image}`, fix: chosen.fix },
    ],
    { cause: error },
  );
}
