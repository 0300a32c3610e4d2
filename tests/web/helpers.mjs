// Shared by the browser tests: the browser, the tokens, the HTTP API for
// setting up, screenshots and page checks.  tests/web/run.sh provides the
// environment: SNP_WEB_URL (a running snpd serving clients/web on a
// throwaway database with the demo territory), SNP_WEB_TOKENS (a JSON file of
// one token per role), SNP_WEB_ARTIFACTS (where screenshots go), and for the
// little the API cannot do, SNP_WEB_PSQL and SNPD_DATABASE_URL (psql and the
// throwaway database).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const URL_BASE = process.env.SNP_WEB_URL;
export const ARTIFACTS = process.env.SNP_WEB_ARTIFACTS || 'tests/artifacts/web';
if (!URL_BASE || !process.env.SNP_WEB_TOKENS) {
  throw new Error('run the browser tests through tests/web/run.sh (SNP_WEB_URL and SNP_WEB_TOKENS are not set)');
}
export const TOKENS = JSON.parse(fs.readFileSync(process.env.SNP_WEB_TOKENS, 'utf8'));

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 900 };

// Debian's chromium, never a browser downloaded by Playwright.  Playwright
// gives every launch a fresh temporary profile (its own --user-data-dir,
// removed on close) and every context its own storage.
export async function launch() {
  const headless = process.env.SNP_WEB_HEADED !== '1';
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless,
    args: [...(headless ? ['--headless'] : []), '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** The pages open, by name, for screenshots on failure. */
const openPages = new Map();

/** Screenshots every open page as FAILED-<test>-<page>.png (called when a test fails). */
export async function failureShots(testName) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const slug = testName.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40);
  for (const [page, name] of openPages) {
    try {
      await page.screenshot({ path: path.join(ARTIFACTS, `FAILED-${slug}-${name}.png`), fullPage: true, timeout: 5000 });
    } catch { /* the page may be gone */ }
  }
}

/** Errors seen in the pages (uncaught exceptions, console errors), checked at the end. */
export const pageErrors = [];

/**
 * A new context (own storage) and page, in French, at VIEWPORT.  Console
 * errors matching EXPECTED (a RegExp) are not counted as page errors.
 */
export async function newPage(browser, viewport = PHONE, name = 'page', expected = null) {
  const context = await browser.newContext({
    viewport, locale: 'fr-FR', timezoneId: 'Europe/Paris', deviceScaleFactor: 1,
    hasTouch: viewport.width < 600, isMobile: false,
  });
  // window.print() would open a dialog: count the calls instead.
  await context.addInitScript(() => {
    window.__printed = 0;
    window.print = () => { window.__printed += 1; };
  });
  const page = await context.newPage();
  openPages.set(page, name);
  page.on('close', () => openPages.delete(page));
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(expected && expected.test(m.text()))) pageErrors.push(`${name}: console: ${m.text()}`);
  });
  return page;
}

/** Signs PAGE in with the token of ROLE through the sign-in page, then opens TARGET. */
export async function signIn(page, role, target) {
  await page.goto(`${URL_BASE}/index.html`);
  await page.fill('#token', TOKENS[role]);
  await page.click('#signin-button');
  await page.waitForSelector('#menu:not([hidden])');
  if (target) {
    await page.goto(`${URL_BASE}/${target}`);
    await page.waitForSelector('#conn[data-status="online"]');
  }
}

let shotNo = 0;
/** Saves a screenshot of PAGE as NN-NAME.png under the artefacts folder. */
export async function shot(page, name, fullPage = true) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  shotNo += 1;
  const file = path.join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** Saves a screenshot of the element LOCATOR as NN-NAME.png. */
export async function shotElement(locator, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  shotNo += 1;
  const file = path.join(ARTIFACTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await locator.screenshot({ path: file });
  return file;
}

/** Calls TYPE over the HTTP binding as ROLE (for setting up and checking). */
export async function api(role, method, route, body) {
  const res = await fetch(`${URL_BASE}/api/v1${route}`, {
    method,
    headers: { Authorization: `Bearer ${TOKENS[role]}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

/** Fails when the page is wider than its viewport (horizontal scrolling on a phone). */
export async function assertNoOverflow(page, label) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, width: window.innerWidth,
  }));
  assert.ok(scroll <= width, `${label}: the page is ${scroll} px wide in a ${width} px viewport`);
}

/** Fails when a visible form control has no accessible name, or a button no text. */
export async function assertLabelled(page, label) {
  const bad = await page.evaluate(() => {
    const out = [];
    const visible = (n) => !!(n.offsetWidth || n.offsetHeight || n.getClientRects().length);
    for (const n of document.querySelectorAll('input, select, textarea')) {
      if (n.type === 'hidden' || !visible(n)) continue;
      const named = (n.labels && n.labels.length) || n.getAttribute('aria-label') || n.getAttribute('aria-labelledby');
      if (!named) out.push(`${n.tagName.toLowerCase()}#${n.id || n.name}`);
    }
    for (const b of document.querySelectorAll('button')) {
      if (visible(b) && !(b.textContent.trim() || b.getAttribute('aria-label'))) out.push(`button#${b.id}`);
    }
    return out;
  });
  assert.deepEqual(bad, [], `${label}: controls without a label`);
}

/** Sets a marker in the page's window: it survives only while the page is not reloaded. */
export async function markNoReload(page) {
  await page.evaluate(() => { window.__noReload = 'still the same page'; });
}

export async function assertNotReloaded(page, label) {
  assert.equal(await page.evaluate(() => window.__noReload), 'still the same page', `${label} was reloaded`);
}

/** The number shown in the SAS board's total for HORIZON. */
export async function boardTotal(page, horizon) {
  return Number(await page.textContent(`#stat-${horizon} .big-number`));
}

/**
 * Lets the WebSockets of PAGE talk to the real server, except that every
 * request of type TYPE is answered by the test with the data ANSWER(request
 * data) returns: what snpd cannot be brought to say in a test run.
 */
export async function playAnswer(page, type, answer) {
  await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const m = JSON.parse(message);
      if (m.type !== type) {
        server.send(message);
        return;
      }
      ws.send(JSON.stringify({ id: m.id, type: m.type, ok: true, data: answer(m.data || {}) }));
    });
  });
}

/**
 * Runs TEXT on the throwaway database with psql and returns what it prints
 * (unaligned, tuples only).  Only for what no message can do: putting an
 * appointment in the past (a slot is offered no sooner than a few minutes
 * ahead, and an outcome is reported from its start).
 */
export function sql(text) {
  const psql = process.env.SNP_WEB_PSQL;
  const database = process.env.SNPD_DATABASE_URL;
  if (!psql || !database) throw new Error('SNP_WEB_PSQL and SNPD_DATABASE_URL are not set: run tests/web/run.sh');
  return execFileSync(psql, ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', text],
    { encoding: 'utf8' }).trim();
}
