// The app's own settings, from its own variable names: a missing one stops it with a message.

/** The value of `name`, or the app exits saying which variable is missing. */
export function required(name) {
  const value = process.env[name];
  if (value) return value;
  console.error(`shortener: ${name} is not set; set it in the environment (see .labtest.yml)`);
  process.exit(1);
}

/** Prints what went wrong to stderr and exits, as a misconfigured app should. */
export function die(what, error) {
  console.error(`shortener: ${what}: ${error.message}`);
  process.exit(1);
}
