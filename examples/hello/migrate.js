// Runs before each release starts; the experiments issue gives it a real schema to create.
console.log(`migrating ${process.env.DATABASE_NAME ?? "(no database)"}`);
