// The contract scenario, driven through the TypeScript client generated from docs/openapi.json.
//
// Signs in, creates an agent and a workflow, publishes a definition with an approval step and a
// webhook step (against a target this program serves on 127.0.0.1), starts a run, approves it,
// follows it to completion, reads its steps and logs, then publishes a second version and rolls
// back to the first. Only the generated SDK's functions and types are used.
//
// Environment: IPA_URL, IPA_USERNAME, IPA_PASSWORD. scripts/contract/clients.py generates the
// client into src/client beside this file, type-checks both with `tsc --strict` and runs it.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { client } from './client/client.gen';
import {
  createAgent,
  createWorkflow,
  decideApproval,
  getAgent,
  getExecution,
  getMe,
  getWorkflow,
  listExecutionLogs,
  listWorkflowVersions,
  login,
  publishWorkflowVersion,
  rollbackWorkflow,
  startExecution,
  updateWorkflow,
} from './client/sdk.gen';
import type { ExecutionDetail } from './client/types.gen';

const DEADLINE_MS = 60_000;

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set`);
  }
  return value;
}

function check(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`the scenario failed: ${what}`);
  }
}

/** What the webhook target received. */
interface Received {
  path: string;
  body: unknown;
}

/** A webhook target on 127.0.0.1: answers every POST with what it received, and remembers it. */
async function startTarget(received: Received[]): Promise<{ url: string; close: () => void }> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = text === '' ? null : JSON.parse(text);
      received.push({ path: request.url ?? '', body });
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify({ paid: true, echo: body }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** The run once `done` holds of it, polled until the deadline. */
async function waitFor(id: string, done: (run: ExecutionDetail) => boolean): Promise<ExecutionDetail> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const { data: run } = await getExecution({ path: { id }, throwOnError: true });
    if (done(run)) {
      return run;
    }
    if (run.status === 'failed' || run.status === 'cancelled') {
      throw new Error(`the run ended ${run.status}: ${run.error ?? ''}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`the run is still ${run.status} after ${DEADLINE_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function main(): Promise<void> {
  const received: Received[] = [];
  const target = await startTarget(received);
  client.setConfig({ baseUrl: setting('IPA_URL') });

  // Sign in.
  const { data: session } = await login({
    body: { identifier: setting('IPA_USERNAME'), password: setting('IPA_PASSWORD') },
    throwOnError: true,
  });
  client.setConfig({ auth: () => session.access_token });
  const { data: me } = await getMe({ throwOnError: true });
  check(me.username === setting('IPA_USERNAME'), 'GET /me names the signed-in user');

  // An agent.
  const { data: agent, response: created } = await createAgent({
    body: {
      name: 'Refund advisor (TypeScript client)',
      type: 'semantic_kernel',
      model_name: 'gpt-4o',
      system_prompt: 'You advise on refunds.',
      configuration: { provider: { type: 'openai', api_key: { env: 'OPENAI_API_KEY' } } },
    },
    throwOnError: true,
  });
  check(created.status === 201, 'creating an agent answers 201');
  const { data: readAgent } = await getAgent({ path: { id: agent.id }, throwOnError: true });
  check(readAgent.name === agent.name, 'the agent reads back');

  // A workflow, its first version (an approval, then a webhook), made active.
  const { data: workflow } = await createWorkflow({
    body: { name: 'Refunds (TypeScript client)' },
    throwOnError: true,
  });
  const { data: first } = await publishWorkflowVersion({
    path: { id: workflow.id },
    body: {
      definition: {
        steps: [
          { name: 'approve', type: 'approval', message: 'Refund {{ input.amount }}?' },
          {
            name: 'pay',
            type: 'webhook',
            request: { method: 'POST', url: `${target.url}/pay`, body: { amount: '{{ input.amount }}' } },
          },
        ],
      },
      change_summary: 'Approve, then pay.',
    },
    throwOnError: true,
  });
  check(first.version_number === 1, 'the first version is number 1');
  const { data: active } = await updateWorkflow({
    path: { id: workflow.id },
    body: { status: 'active' },
    throwOnError: true,
  });
  check(active.status === 'active', 'the workflow is active');

  // A run: it waits for the approval, which the owner gives, then pays.
  const { data: run, response: started } = await startExecution({
    path: { id: workflow.id },
    body: { input: { amount: 30 } },
    throwOnError: true,
  });
  check(started.status === 201, 'starting a run answers 201');
  const waiting = await waitFor(run.id, (detail) => typeof detail.waiting_step_id === 'string');
  await decideApproval({
    path: { id: run.id, step_id: waiting.waiting_step_id ?? '' },
    body: { decision: 'approve', comment: 'Within policy.' },
    throwOnError: true,
  });
  const done = await waitFor(run.id, (detail) => detail.status === 'completed');
  check(
    JSON.stringify(done.steps.map((step) => [step.name, step.status])) ===
      JSON.stringify([
        ['approve', 'completed'],
        ['pay', 'completed'],
      ]),
    'both steps completed',
  );
  check(
    // A template renders to text.
    JSON.stringify(received) === JSON.stringify([{ path: '/pay', body: { amount: '30' } }]),
    `the target was paid once (${JSON.stringify(received)})`,
  );
  const { data: logs } = await listExecutionLogs({ path: { id: run.id }, throwOnError: true });
  check(logs.items.length > 0, 'the run has log lines');

  // A second version, then back to the first.
  const { data: second } = await publishWorkflowVersion({
    path: { id: workflow.id },
    body: {
      definition: { steps: [{ name: 'pay', type: 'webhook', request: { method: 'POST', url: `${target.url}/pay` } }] },
    },
    throwOnError: true,
  });
  check(second.version_number === 2, 'the second version is number 2');
  const { data: versions } = await listWorkflowVersions({ path: { id: workflow.id }, throwOnError: true });
  check(versions.items.length === 2, 'the workflow has two versions');
  const { data: rolledBack } = await rollbackWorkflow({
    path: { id: workflow.id },
    body: { version_number: 1 },
    throwOnError: true,
  });
  check(rolledBack.current_version_number === 1, 'version 1 is current again');
  const { data: reread } = await getWorkflow({ path: { id: workflow.id }, throwOnError: true });
  check(reread.current_version_id === first.id, 'the workflow reads back at version 1');
  target.close();
  console.log('TypeScript client: the scenario passed.');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
