// What every browser flow starts with: its settings from the environment and a headless Chromium.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

// The values of the named environment variables, in order; exits 2 naming them when one is not set.
export function settings(...names) {
  const values = names.map((name) => process.env[name]);
  if (values.some((value) => !value)) {
    console.error(`${names.slice(0, -1).join(', ')} and ${names.at(-1)} must be set`);
    process.exit(2);
  }
  return values;
}

// Headless Chromium ($CHROMIUM, else Debian's), with $shots made ready for the screenshots.
export async function launch(shots) {
  mkdirSync(shots, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
