// End-to-end tests of the Vigil web console in real headless Chromium.
//
// Starts `vigil serve` on a free loopback port with a fresh data directory, submits the example
// artifacts with the admin token it prints, then drives Chromium through the console: log in,
// the queue, a finding with its evidence, triage, accepting a risk, the diagram, the dashboard,
// bulk triage, the webhook inbox's dead-letter list and logout, checking the session cookie's flags and the CSRF protection on the
// way. Screenshots of each step go to the output folder printed at the end.
//
// Environment: VIGIL_BIN (default debug/vigil in the build folder scripts/test uses), CHROMIUM (default
// /usr/bin/chromium), VIGIL_E2E_OUT (default $CARGO_TARGET_DIR/e2e-screenshots).
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const repo = path.resolve(__dirname, '..', '..');
// The build folder the project's scripts use: $CARGO_TARGET_DIR, else $VIGIL_TARGET_DIR, else
// ~/.cache/vigil-target.
const targetDir = process.env.CARGO_TARGET_DIR || process.env.VIGIL_TARGET_DIR
  || path.join(os.homedir(), '.cache', 'vigil-target');
const vigilBin = process.env.VIGIL_BIN || path.join(targetDir, 'debug', 'vigil');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const outDir = process.env.VIGIL_E2E_OUT || path.join(targetDir, 'e2e-screenshots');
const ARTIFACTS = [
  'examples/markdown/partner-webhooks.md',
  'examples/markdown/telehealth-video-visits.md',
  'examples/github/bank-sync.issue.json',
  'examples/jira/teller-assist-lookup.v2.json',
];

const HOOK_SECRET = 'e2e-webhook-secret';

/** Posts a GitHub webhook signed with the connector's secret; returns the HTTP status. */
async function postHook(server, event, delivery, body) {
  const signature = crypto.createHmac('sha256', HOOK_SECRET).update(body).digest('hex');
  const res = await fetch(`${server.base}/hooks/github/gh`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-GitHub-Event': event,
      'X-GitHub-Delivery': delivery,
      'X-Hub-Signature-256': `sha256=${signature}`,
    },
    body,
  });
  return res.status;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

async function startServer() {
  if (!fs.existsSync(vigilBin)) throw new Error(`no vigil binary at ${vigilBin}: cargo build -p vigil, or set VIGIL_BIN`);
  if (!fs.existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath}: scripts/setup installs it, or set CHROMIUM`);
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-e2e-'));
  const env = {
    ...process.env,
    VIGIL__SERVER__LISTEN: `127.0.0.1:${port}`,
    VIGIL__STORE__DATA_DIR: dataDir,
    VIGIL__LLM__MODE: 'off',
    VIGIL__LOG__LEVEL: 'warn',
    VIGIL__CONNECTORS__GH__TOOL: 'github',
    VIGIL__CONNECTORS__GH__SECRET: HOOK_SECRET,
  };
  const child = spawn(vigilBin, ['serve'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.on('error', (err) => { stderr += String(err); });
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vigil serve exited (${child.exitCode}):\n${stderr}`);
    if (Date.now() > deadline) throw new Error(`vigil serve did not become ready:\n${stderr}`);
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok && /vgl_[0-9a-f]{64}/.test(stdout)) break;
    } catch (e) {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = stdout.match(/vgl_[0-9a-f]{64}/)[0];
  return { child, base, token, dataDir, logs: () => stderr };
}

async function apiCall(server, method, route, body, contentType) {
  const headers = { Authorization: `Bearer ${server.token}` };
  if (body !== undefined) headers['Content-Type'] = contentType || 'application/json';
  const res = await fetch(`${server.base}${route}`, { method, headers, body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  for (const old of fs.readdirSync(outDir).filter((f) => f.endsWith('.png'))) fs.rmSync(path.join(outDir, old));
  const server = await startServer();
  const results = [];
  let browser;
  const started = Date.now();
  try {
    for (const file of ARTIFACTS) {
      const body = fs.readFileSync(path.join(repo, file));
      await apiCall(server, 'POST', '/api/v1/artifacts', body, 'text/plain');
    }
    // A second version of one design, so an artifact has a timeline and a review diff.
    const changed = fs.readFileSync(path.join(repo, ARTIFACTS[0]), 'utf8').replace('HMAC', 'a shared password');
    const second = await apiCall(server, 'POST', '/api/v1/artifacts', changed, 'text/plain');
    const secondReview = second.reviews[0].id;
    const security = await apiCall(server, 'POST', '/api/v1/tokens', JSON.stringify({ name: 'e2e reader', role: 'auditor' }));

    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-gpu'] });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    const consoleErrors = [];
    // Script errors fail the run; so do server errors. A 404 from a route the server does not
    // offer is expected (the page says so), as are the 401 and 403 the tests provoke.
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
    page.on('response', (res) => {
      if (res.status() >= 500) consoleErrors.push(`${res.status()} from ${res.url()}`);
    });
    let shot = 0;
    const snap = async (name) => {
      shot += 1;
      await page.screenshot({ path: path.join(outDir, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
    };
    const step = async (name, fn) => {
      const t0 = Date.now();
      try {
        await fn();
        results.push({ name, ok: true });
        console.log(`test ${name} ... ok (${Date.now() - t0} ms)`);
      } catch (err) {
        results.push({ name, ok: false });
        console.log(`test ${name} ... FAILED\n${err.stack || err}`);
        await snap(`FAILED-${name}`).catch(() => {});
      }
    };
    const text = (sel) => page.locator(sel).first().innerText();

    await step('login_page_refuses_a_wrong_token_with_the_servers_message', async () => {
      await page.goto(`${server.base}/`);
      await page.getByLabel('API token').fill('vgl_not-a-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#login-error:not([hidden])').waitFor();
      assert((await text('#login-error')).includes('not valid'), 'error shown');
      const csp = (await page.request.get(`${server.base}/`)).headers()['content-security-policy'];
      assert(csp && csp.startsWith("default-src 'self'"), `CSP ${csp}`);
      await snap('login-refused');
    });

    await step('log_in_with_the_admin_token_sets_a_strict_http_only_cookie', async () => {
      await page.getByLabel('API token').fill(server.token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#queue tbody tr').first().waitFor();
      const cookies = await context.cookies();
      const cookie = cookies.find((c) => c.name === 'vigil_session');
      assert(cookie, 'session cookie set');
      assert(cookie.httpOnly, 'HttpOnly');
      assert(cookie.sameSite === 'Strict', `SameSite ${cookie.sameSite}`);
      assert(cookie.path === '/', 'Path=/');
      assert(!(await page.evaluate(() => document.cookie)).includes('vigil_session'), 'not readable by script');
      assert((await text('#who')).includes('admin'), 'role shown');
      await snap('findings-queue');
    });

    await step('a_change_without_the_csrf_token_is_refused', async () => {
      const id = await page.locator('#queue tbody tr').first().getAttribute('data-id');
      const answer = await page.evaluate(async (fid) => {
        const res = await fetch(`/api/v1/findings/${fid}/triage`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"status":"confirmed"}',
        });
        return { status: res.status, body: await res.json() };
      }, id);
      assert(answer.status === 403, `status ${answer.status}`);
      assert(answer.body.error.code === 'csrf_rejected', JSON.stringify(answer.body));
      const after = await apiCall(server, 'GET', `/api/v1/findings/${id}`);
      assert(after.state.status === 'open', 'nothing changed');
    });

    await step('filters_and_keyboard_open_a_finding_with_its_evidence_highlighted', async () => {
      await page.getByLabel('Severity').selectOption('high');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.waitForFunction(() => location.hash.includes('severity=high'));
      await page.locator('#queue tbody tr').first().waitFor();
      const severities = await page.locator('#queue tbody tr .sev').allInnerTexts();
      assert(severities.length > 0 && severities.every((s) => s.toLowerCase().includes('high')), severities.join());
      await page.locator('#main').focus();
      await page.keyboard.press('j');
      await page.keyboard.press('k');
      const expected = await page.locator('#queue tbody tr.current').getAttribute('data-id');
      await page.keyboard.press('Enter');
      await page.locator('#triage-form').waitFor();
      assert(decodeURIComponent(await page.evaluate(() => location.hash)).includes(expected), 'opened the current row');
      const marks = await page.locator('mark.evidence').count();
      assert(marks > 0, 'evidence highlighted');
      // Where the server keeps artifact versions, the evidence is marked inside the artifact text.
      const view = await apiCall(server, 'GET', `/api/v1/findings/${encodeURIComponent(expected)}`);
      const versions = await fetch(`${server.base}/api/v1/artifacts/${encodeURIComponent(view.artifact)}/versions`,
        { headers: { Authorization: `Bearer ${server.token}` } });
      if (versions.ok) {
        const inText = await page.locator('#artifact-text mark.evidence').count();
        assert(inText > 0, 'evidence highlighted in the artifact text');
        const marked = await page.locator('#artifact-text mark.evidence').first().innerText();
        assert(view.finding.evidence.some((e) => e.text.replace(/\s+/g, ' ').trim() === marked.replace(/\s+/g, ' ').trim()), `marked ${marked}`);
      }
      assert((await text('#score-title')).startsWith('Score'), 'score shown');
      assert((await page.locator('.factors').count()) === 3, 'three factor groups');
      await snap('finding-detail');
    });

    await step('triage_a_finding', async () => {
      const id = decodeURIComponent((await page.evaluate(() => location.hash)).split('/').pop());
      await page.getByLabel('Status', { exact: true }).selectOption('confirmed');
      await page.getByLabel('Assignee').fill('payments-team');
      await page.getByLabel('Comment').fill('Confirmed in design review.');
      await page.getByRole('button', { name: 'Save triage' }).click();
      await page.locator('#flash:not([hidden])').waitFor();
      assert((await text('#flash')).includes('Triage saved'), await text('#flash'));
      const after = await apiCall(server, 'GET', `/api/v1/findings/${id}`);
      assert(after.state.status === 'confirmed', after.state.status);
      assert(after.state.assignee === 'payments-team', 'assignee');
      await page.getByText('Confirmed in design review.').first().waitFor();
      await snap('finding-triaged');
    });

    await step('accept_a_risk_with_expiry_and_approver', async () => {
      const id = decodeURIComponent((await page.evaluate(() => location.hash)).split('/').pop());
      await page.getByLabel('Owner').fill('payments-team');
      await page.getByLabel('Approver').fill('CISO Jane Doe');
      await page.getByLabel('Expires on').fill('2027-03-31');
      await page.getByLabel('Rationale').fill('Compensating WAF rule until the Q1 redesign.');
      await page.getByRole('button', { name: 'Accept risk' }).click();
      await page.waitForFunction(() => document.querySelector('#flash') && document.querySelector('#flash').textContent.includes('Risk accepted'));
      const after = await apiCall(server, 'GET', `/api/v1/findings/${id}`);
      assert(after.state.status === 'risk_accepted', after.state.status);
      await page.goto(`${server.base}/#/decisions`);
      await page.getByRole('heading', { name: 'Decisions and exceptions' }).waitFor();
      await page.locator('tbody').getByText('2027-03-31').first().waitFor();
      await page.getByText('CISO Jane Doe').first().waitFor();
      const register = await fetch(`${server.base}/api/v1/decisions`, { headers: { Authorization: `Bearer ${server.token}` } });
      if (register.ok) {
        const row = page.locator('tr', { hasText: 'CISO Jane Doe' });
        assert((await row.innerText()).includes('active'), await row.innerText());
        assert((await row.locator('a').getAttribute('href')).includes(encodeURIComponent(id)), 'links to the finding');
      }
      await snap('decisions');
    });

    await step('see_the_data_flow_diagram_of_an_artifact', async () => {
      await page.goto(`${server.base}/#/reviews`);
      await page.locator('table a').first().click();
      const img = page.locator('img#dfd');
      await img.waitFor();
      await page.waitForFunction(() => { const i = document.querySelector('img#dfd'); return i && i.complete && i.naturalWidth > 0; });
      const src = await img.getAttribute('src');
      assert(/\/api\/v1\/reviews\/[^/]+\/dfd\?format=svg$/.test(src), src);
      await snap('artifact-dfd');
    });

    await step('see_an_artifacts_version_timeline_and_review_diff', async () => {
      const versions = await fetch(`${server.base}/api/v1/reviews/${secondReview}/versions`, { headers: { Authorization: `Bearer ${server.token}` } });
      await page.goto(`${server.base}/#/reviews/${secondReview}`);
      await page.locator('img#dfd').waitFor();
      if (!versions.ok) return;
      const list = await versions.json();
      const latest = list[list.length - 1].version;
      await page.locator('#versions li').nth(list.length - 1).waitFor();
      assert((await page.locator('#versions li').count()) === list.length, `${list.length} versions`);
      const current = await page.locator('#versions li[aria-current="true"]').innerText();
      assert(current.includes(`Version ${latest} (this review)`), current);
      const diff = page.getByRole('heading', { name: 'Review diff' }).locator('..');
      await diff.getByText(`Version ${latest - 1} → ${latest}`).or(diff.getByText(`from version ${latest - 1} to ${latest}`)).first().waitFor();
      await diff.scrollIntoViewIfNeeded();
      await snap('artifact-versions-diff');
    });

    await step('see_the_dashboard', async () => {
      await page.keyboard.press('g');
      await page.keyboard.press('d');
      await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
      const open = await page.locator('[aria-label="Open findings by severity"] .kpi').allInnerTexts();
      assert(open.length === 5 && open.some((n) => Number(n) > 0), open.join());
      await page.getByRole('heading', { name: 'By team' }).waitFor();
      const dashboard = await fetch(`${server.base}/api/v1/dashboard`, { headers: { Authorization: `Bearer ${server.token}` } });
      if (dashboard.ok) {
        const figures = await dashboard.json();
        const kpis = await page.locator('#kpis').innerText();
        assert(kpis.includes(`${Math.round(figures.coverage * 100)}%`) && kpis.includes('Mean time to mitigation'), kpis);
      }
      await snap('dashboard');
    });

    await step('bulk_triage_from_the_queue', async () => {
      await page.goto(`${server.base}/#/findings?severity=medium`);
      await page.locator('#queue tbody tr').nth(1).waitFor();
      const ids = await page.locator('#queue tbody tr').evaluateAll((rows) => rows.slice(0, 2).map((r) => r.dataset.id));
      await page.locator('#main').focus();
      await page.keyboard.press('x');
      await page.keyboard.press('j');
      await page.keyboard.press('x');
      assert((await text('#selected-count')) === '2 selected', await text('#selected-count'));
      await page.locator('#bulk-status').selectOption('false_positive');
      await page.getByRole('button', { name: 'Set status' }).click();
      await page.waitForFunction(() => document.querySelector('#flash').textContent.includes('2 findings'));
      for (const id of ids) {
        const after = await apiCall(server, 'GET', `/api/v1/findings/${id}`);
        assert(after.state.status === 'false_positive', `${id} ${after.state.status}`);
      }
      await snap('bulk-triage');
    });

    await step('a_dead_letter_is_listed_in_the_inbox_and_retried', async () => {
      // An issues event without its issue cannot become an artifact: it fails for good.
      const status = await postHook(server, 'issues', 'e2e-broken-1', '{"action":"opened"}');
      assert(status === 202, `webhook answered ${status}`);
      await page.keyboard.press('g');
      await page.keyboard.press('i');
      await page.getByRole('heading', { name: 'Webhook inbox' }).waitFor();
      const row = page.locator('tbody tr', { hasText: 'e2e-broken-1' });
      for (let i = 0; !(await row.count()); i += 1) {
        assert(i < 50, 'the dead letter did not appear');
        await new Promise((r) => setTimeout(r, 200));
        await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
        await page.getByRole('heading', { name: 'Webhook inbox' }).waitFor();
      }
      const error = await row.locator('td').nth(5).innerText();
      assert((await row.innerText()).includes('issues') && error.length > 3 && error !== '—', error);
      await snap('inbox-dead-letters');
      await row.getByRole('button', { name: /Retry event/ }).click();
      await page.waitForFunction(() => document.querySelector('#flash').textContent.includes('queued again'));
      const events = [];
      for (const status of ['dead', 'pending', 'processing']) {
        events.push(...(await apiCall(server, 'GET', `/api/v1/inbox?status=${status}`)).events);
      }
      const event = events.find((e) => e.delivery_id === 'e2e-broken-1');
      assert(event, 'the retried event is kept');
    });

    await step('a_read_only_role_cannot_triage', async () => {
      const other = await browser.newContext();
      const p2 = await other.newPage();
      await p2.goto(`${server.base}/`);
      await p2.getByLabel('API token').fill(security.token);
      await p2.getByRole('button', { name: 'Sign in' }).click();
      await p2.locator('#queue tbody tr a').first().click();
      await p2.locator('#triage-form').waitFor();
      assert(await p2.getByRole('button', { name: 'Save triage' }).isDisabled(), 'triage disabled for auditors');
      await other.close();
    });

    await step('log_out_ends_the_session', async () => {
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByRole('heading', { name: 'Sign in to the console' }).waitFor();
      const status = await page.evaluate(async () => (await fetch('/api/v1/findings')).status);
      assert(status === 401, `status ${status}`);
      await snap('logged-out');
    });

    await step('no_script_errors_in_the_page', async () => {
      assert(consoleErrors.length === 0, consoleErrors.join('\n'));
    });
  } finally {
    if (browser) await browser.close();
    server.child.kill('SIGTERM');
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`\ntest result: ${failed ? 'FAILED' : 'ok'}. ${passed} passed; ${failed} failed; 0 ignored; 0 measured; 0 filtered out; finished in ${secs}s`);
  console.log(`e2e screenshots: ${outDir}`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  console.error(err.stack || err);
  console.log('\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out');
  process.exitCode = 1;
});
