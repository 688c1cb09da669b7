// Compile src/*.sol with the pinned solc (package.json) into JSON artifacts.
//
//   node build.mjs [--out DIR]     default DIR: ../../libs/omc_chain/artifacts
//
// One artifact per contract: abi, bytecode, deployed bytecode, the exact compiler version, the
// settings, and the SHA-256 of the source it came from (checked by `omc chain build --check`).
// Output is deterministic: no metadata hash and no CBOR trailer in the bytecode, sorted inputs,
// fixed settings, so the same sources always give the same bytes.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
const outFlag = process.argv.indexOf("--out");
const outDir = outFlag > 0 ? resolve(process.argv[outFlag + 1])
                           : resolve(here, "../../libs/omc_chain/artifacts");

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  metadata: { bytecodeHash: "none", appendCBOR: false },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

const names = readdirSync(join(here, "src")).filter((n) => n.endsWith(".sol")).sort();
const sources = {};
const digests = {};
for (const name of names) {
  const bytes = readFileSync(join(here, "src", name));
  sources[`src/${name}`] = { content: bytes.toString("utf8") };
  digests[`src/${name}`] = createHash("sha256").update(bytes).digest("hex");
}

const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS })));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

mkdirSync(outDir, { recursive: true });
const { outputSelection, ...recorded } = SETTINGS;
for (const path of Object.keys(output.contracts).sort()) {
  for (const [contract, compiled] of Object.entries(output.contracts[path]).sort()) {
    const artifact = {
      contract,
      source: `deploy/contracts/${path}`,
      source_sha256: digests[path],
      solc_version: solc.version(),
      settings: recorded,
      abi: compiled.abi,
      bytecode: `0x${compiled.evm.bytecode.object}`,
      deployed_bytecode: `0x${compiled.evm.deployedBytecode.object}`,
    };
    writeFileSync(join(outDir, `${contract}.json`), `${JSON.stringify(artifact, null, 2)}\n`);
    console.log(`${contract}: ${artifact.bytecode.length / 2 - 1} bytes of init code -> ${join(outDir, contract)}.json`);
  }
}
