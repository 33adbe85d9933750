import { LabtestError } from "../errors.js";

/** A secret that cannot be encrypted or revealed: no provider, a wrong key, a damaged value. */
export class SecretError extends LabtestError {}
