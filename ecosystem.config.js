// pm2 process file for D3:  pm2 start ecosystem.config.js [--only d3-miner|d3-validator]
//
// Every neuron flag can come from the environment (--wallet.name is D3_WALLET_NAME), so
// configuration lives in a .env file next to this one (see docs/miner.md, docs/validator.md)
// or in the shell that runs pm2. Extra command-line flags: D3_MINER_ARGS / D3_VALIDATOR_ARGS.
const fs = require("fs");
const path = require("path");

const root = __dirname;

function loadDotEnv(file) {
  const env = {};
  if (!fs.existsSync(file)) return env;
  for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 1) continue;
    let value = line.slice(eq + 1).trim();
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    env[line.slice(0, eq).trim()] = value;
  }
  return env;
}

// Under pm2 the console log goes to stdout, which pm2 files as out, not error (a .env or
// the shell can still say D3_LOGGING_STREAM=stderr).
const env = { D3_LOGGING_STREAM: "stdout", ...loadDotEnv(path.join(root, ".env")), ...process.env };
const venvPython = path.join(root, ".venv", "bin", "python");
const python = env.D3_PYTHON || (fs.existsSync(venvPython) ? venvPython : "python3");
const logs = env.D3_PM2_LOG_DIR || path.join(root, "logs");

function app(name, script, extraArgs) {
  return {
    name,
    script: path.join(root, "neurons", script),
    interpreter: python,
    args: extraArgs || "",
    cwd: root,
    env,
    autorestart: true,
    // Fatal conditions (deregistered, Redis down too long) exit non-zero: restart, but back
    // off so a misconfiguration does not spin.
    exp_backoff_restart_delay: 1000,
    max_restarts: 50,
    min_uptime: "60s",
    kill_signal: "SIGTERM",
    kill_timeout: 30000,
    out_file: path.join(logs, `${name}.out.log`),
    error_file: path.join(logs, `${name}.err.log`),
    merge_logs: true,
    time: false,
  };
}

module.exports = {
  apps: [
    app("d3-miner", "miner.py", env.D3_MINER_ARGS),
    app("d3-validator", "validator.py", env.D3_VALIDATOR_ARGS),
  ],
};
