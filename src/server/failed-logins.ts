import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import { LabtestError } from "../errors.js";
import { EXIT_REFUSED } from "../laboratory/identity.js";

/** How many failed authentications a client address may make, and in how many seconds. */
export interface FailedLoginLimit {
  failures: number;
  seconds: number;
}

/** Ten wrong tokens a minute: a typo or two and a retry pass; guessing a token does not. */
export const DEFAULT_FAILED_LOGIN_LIMIT: FailedLoginLimit = { failures: 10, seconds: 60 };

/** Too many failed authentications from one address. HTTP 429, with Retry-After. */
export class TooManyFailuresError extends LabtestError {
  readonly status = 429;

  constructor(
    address: string,
    readonly retryAfterSeconds: number,
  ) {
    super(
      `too many failed authentications from ${address}`,
      [
        {
          where: "credentials",
          what: "the laboratory refuses this address for now",
          fix: `check the token (labtest login), then retry in ${retryAfterSeconds} s`,
        },
      ],
      { exitCode: EXIT_REFUSED },
    );
  }
}

/**
 * Failed authentications per client address: once an address has failed `failures` times within
 * `seconds`, it is refused before its credentials are even looked at, until the window passes.
 */
export class FailedLogins {
  private readonly limiter: RateLimiterMemory;

  constructor(private readonly limit: FailedLoginLimit = DEFAULT_FAILED_LOGIN_LIMIT) {
    this.limiter = new RateLimiterMemory({ points: limit.failures, duration: limit.seconds });
  }

  /** Throws a TooManyFailuresError when `address` has used up its failures. */
  async check(address: string): Promise<void> {
    const used = await this.limiter.get(address);
    if (used && used.consumedPoints >= this.limit.failures)
      throw new TooManyFailuresError(address, Math.max(1, Math.ceil(used.msBeforeNext / 1000)));
  }

  /** Counts one failed authentication of `address`. */
  async failed(address: string): Promise<void> {
    await this.limiter.consume(address).catch((refused: unknown) => {
      // Past its allowance the limiter rejects with how long remains: the address is refused from now on.
      if (!(refused instanceof RateLimiterRes)) throw refused;
    });
  }
}
