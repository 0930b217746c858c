"""The contract scenario, driven through the Python client generated from docs/openapi.json.

Signs in, creates an agent and a workflow, publishes a definition with an approval step and a
webhook step (against a target this script serves on 127.0.0.1), starts a run, approves it,
follows it to completion, reads its steps and logs, then publishes a second version and rolls
back to the first. Only the generated client's functions and models are used.

Environment: IPA_URL, IPA_USERNAME, IPA_PASSWORD. The generated package `ipa_client` must be on
the path (scripts/contract/clients.py puts it there).
"""

import http.server
import json
import os
import sys
import threading
import time
from uuid import UUID

from ipa_client import AuthenticatedClient, Client
from ipa_client.api.agents import create_agent, get_agent
from ipa_client.api.auth import get_me, login
from ipa_client.api.executions import decide_approval, get_execution, list_execution_logs, start_execution
from ipa_client.api.workflows import (
    create_workflow,
    get_workflow,
    list_workflow_versions,
    publish_workflow_version,
    rollback_workflow,
    update_workflow,
)
from ipa_client.models import (
    Agent,
    AgentType,
    ApprovalDecisionRequest,
    ApprovalStep,
    CreateAgentRequest,
    CreateWorkflowRequest,
    Decision,
    EnvSecret,
    Execution,
    ExecutionDetail,
    ExecutionLogPage,
    ExecutionStatus,
    LoginRequest,
    LoginResponse,
    ModelConfiguration,
    OpenAiProvider,
    PublishVersionRequest,
    RollbackRequest,
    StartExecutionRequest,
    StartExecutionRequestInputType0,
    StepStatus,
    UpdateWorkflowRequest,
    User,
    VersionPage,
    WebhookRequest,
    WebhookRequestMethod,
    WebhookStep,
    Workflow,
    WorkflowDefinition,
    WorkflowStatus,
    WorkflowVersion,
)
from ipa_client.types import Response

DEADLINE_SECONDS = 60


def expect(response: Response, status: int, model: type):
    """The parsed body of `response`, which must have `status` and parse as `model`."""
    if response.status_code != status or not isinstance(response.parsed, model):
        sys.exit(
            f"expected {status} {model.__name__}, got {response.status_code}: "
            f"{response.content[:500]!r}"
        )
    return response.parsed


class Target(http.server.BaseHTTPRequestHandler):
    """A webhook target: answers every POST with what it received, and remembers it."""

    received: list[dict] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        Target.received.append({"path": self.path, "body": body})
        answer = json.dumps({"paid": True, "echo": body}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args) -> None:
        pass


def wait_for(client: AuthenticatedClient, run: UUID, done) -> ExecutionDetail:
    """The run once `done(run)` holds, polled until the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        detail = expect(get_execution.sync_detailed(run, client=client), 200, ExecutionDetail)
        if done(detail):
            return detail
        if detail.status in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
            sys.exit(f"the run ended {detail.status}: {detail.error}")
        if time.monotonic() > deadline:
            sys.exit(f"the run is still {detail.status} after {DEADLINE_SECONDS} s")
        time.sleep(0.2)


def main() -> None:
    base_url = os.environ["IPA_URL"]
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    target_url = f"http://127.0.0.1:{target.server_address[1]}"

    # Sign in.
    anonymous = Client(base_url=base_url)
    signed_in = expect(
        login.sync_detailed(
            client=anonymous,
            body=LoginRequest(identifier=os.environ["IPA_USERNAME"], password=os.environ["IPA_PASSWORD"]),
        ),
        200,
        LoginResponse,
    )
    client = AuthenticatedClient(base_url=base_url, token=signed_in.access_token)
    me = expect(get_me.sync_detailed(client=client), 200, User)
    assert me.username == os.environ["IPA_USERNAME"], me

    # An agent.
    agent = expect(
        create_agent.sync_detailed(
            client=client,
            body=CreateAgentRequest(
                name="Refund advisor (Python client)",
                type_=AgentType.SEMANTIC_KERNEL,
                model_name="gpt-4o",
                system_prompt="You advise on refunds.",
                configuration=ModelConfiguration(
                    provider=OpenAiProvider(type_="openai", api_key=EnvSecret(env="OPENAI_API_KEY"))
                ),
            ),
        ),
        201,
        Agent,
    )
    assert expect(get_agent.sync_detailed(agent.id, client=client), 200, Agent).name == agent.name

    # A workflow, its first version (an approval, then a webhook), made active.
    workflow = expect(
        create_workflow.sync_detailed(
            client=client, body=CreateWorkflowRequest(name="Refunds (Python client)")
        ),
        201,
        Workflow,
    )
    first = expect(
        publish_workflow_version.sync_detailed(
            workflow.id,
            client=client,
            body=PublishVersionRequest(
                definition=WorkflowDefinition(
                    steps=[
                        ApprovalStep(name="approve", type_="approval", message="Refund {{ input.amount }}?"),
                        WebhookStep(
                            name="pay",
                            type_="webhook",
                            request=WebhookRequest(
                                method=WebhookRequestMethod.POST,
                                url=f"{target_url}/pay",
                                body={"amount": "{{ input.amount }}"},
                            ),
                        ),
                    ]
                ),
                change_summary="Approve, then pay.",
            ),
        ),
        201,
        WorkflowVersion,
    )
    assert first.version_number == 1, first
    active = expect(
        update_workflow.sync_detailed(
            workflow.id, client=client, body=UpdateWorkflowRequest(status=WorkflowStatus.ACTIVE)
        ),
        200,
        Workflow,
    )
    assert active.status == WorkflowStatus.ACTIVE, active

    # A run: it waits for the approval, which the owner gives, then pays.
    run = expect(
        start_execution.sync_detailed(
            workflow.id,
            client=client,
            body=StartExecutionRequest(input_=StartExecutionRequestInputType0.from_dict({"amount": 30})),
        ),
        201,
        Execution,
    )
    waiting = wait_for(client, run.id, lambda detail: isinstance(detail.waiting_step_id, UUID))
    expect(
        decide_approval.sync_detailed(
            run.id,
            waiting.waiting_step_id,
            client=client,
            body=ApprovalDecisionRequest(decision=Decision.APPROVE, comment="Within policy."),
        ),
        200,
        Execution,
    )
    done = wait_for(client, run.id, lambda detail: detail.status == ExecutionStatus.COMPLETED)
    assert [step.name for step in done.steps] == ["approve", "pay"], done.steps
    assert all(step.status == StepStatus.COMPLETED for step in done.steps), done.steps
    # A template renders to text.
    assert Target.received == [{"path": "/pay", "body": {"amount": "30"}}], Target.received
    logs = expect(list_execution_logs.sync_detailed(run.id, client=client), 200, ExecutionLogPage)
    assert logs.items, "the run has no log lines"

    # A second version, then back to the first.
    second = expect(
        publish_workflow_version.sync_detailed(
            workflow.id,
            client=client,
            body=PublishVersionRequest(
                definition=WorkflowDefinition(
                    steps=[
                        WebhookStep(
                            name="pay",
                            type_="webhook",
                            request=WebhookRequest(method=WebhookRequestMethod.POST, url=f"{target_url}/pay"),
                        )
                    ]
                )
            ),
        ),
        201,
        WorkflowVersion,
    )
    assert second.version_number == 2, second
    versions = expect(list_workflow_versions.sync_detailed(workflow.id, client=client), 200, VersionPage)
    assert len(versions.items) == 2, versions
    rolled_back = expect(
        rollback_workflow.sync_detailed(workflow.id, client=client, body=RollbackRequest(version_number=1)),
        200,
        Workflow,
    )
    assert rolled_back.current_version_number == 1, rolled_back
    assert expect(get_workflow.sync_detailed(workflow.id, client=client), 200, Workflow).current_version_id == first.id
    target.shutdown()
    print("Python client: the scenario passed.")


if __name__ == "__main__":
    main()
