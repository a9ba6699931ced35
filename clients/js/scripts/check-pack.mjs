// Asserts what `npm pack` would publish: exactly the intended files (the `files` field of
// package.json plus what npm always adds), and a version equal to the crate's.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const EXPECTED = ["README.md", "package.json", "session-client.d.ts", "src/session-client.js"];

const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
  cwd: packageDir,
  encoding: "utf8",
  stdio: ["ignore", "pipe", "pipe"],
});
const [pack] = JSON.parse(out);
const files = pack.files.map((f) => f.path).sort();
console.log(`npm pack --dry-run: ${pack.id}, ${files.length} files`);
for (const file of files) console.log(`  ${file}`);
assert.deepEqual(files, EXPECTED, "the package's file list");

const pkg = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
assert.deepEqual(Object.keys(pkg.dependencies || {}), [], "no runtime dependencies");
assert.equal(pkg.type, "module");
for (const target of [pkg.types, pkg.exports["."].types, pkg.exports["."].default]) {
  assert.ok(files.includes(target.replace(/^\.\//, "")), `${target} is packed`);
}
const cargo = join(packageDir, "..", "..", "Cargo.toml");
if (existsSync(cargo)) {
  const crate = /^\[package\][^[]*?^version\s*=\s*"([^"]+)"/m.exec(readFileSync(cargo, "utf8"));
  assert.ok(crate, "the crate's version in Cargo.toml");
  assert.equal(pkg.version, crate[1], "the package's version is the crate's");
  console.log(`version ${pkg.version} = the crate's`);
}
console.log("pack check: ok");
