// The /builder namespace of the Builder gateway, for socket.io-client 4:
//   const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io('http://localhost:3001/builder', { auth: { token } });
// Generated from the gateway's C# contracts (src/Builder/Contracts): do not edit by hand.

/** The error codes the gateway sends (error event, acks, connect_error data.code, HTTP answers). */
export type GatewayErrorCode =
  | "UNKNOWN_EVENT"
  | "INVALID_PAYLOAD"
  | "FORBIDDEN"
  | "PAYLOAD_TOO_LARGE"
  | "RATE_LIMITED"
  | "CONNECTION_LIMIT"
  | "HEARTBEAT_TIMEOUT"
  | "INTERNAL_ERROR"
  | "STORE_UNAVAILABLE"
  | "TOKEN_MISSING"
  | "TOKEN_INVALID"
  | "TOKEN_EXPIRED"
  | "DECISION_NOT_FOUND"
  | "DECISION_ALREADY_RESOLVED"
  | "DECISION_INVALID_OPTION"
;

/** The connection's identity (after the handshake, and after each authenticate). */
export type AuthenticatedEvent = {
  userId: string;
  username: string;
};

/** The answer to join-project, after the replay or the snapshot. */
export type ProjectJoinedEvent = {
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  members: number;
  seq: number;
  replayed?: number;
};

/** The project's state when joined without a usable lastSeq: agents, build, pending decisions, deployment. */
export type ProjectSnapshotEvent = {
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  agents: Array<Record<string, unknown>>;
  build: Record<string, unknown> | null;
  pendingDecisions: Array<Record<string, unknown>>;
  deployment: Record<string, unknown> | null;
};

/** The application heartbeat (every Heartbeat:IntervalSeconds): answer with pong. */
export type PingEvent = null;

/** An agent's status and progress. */
export type AgentStatusUpdateEvent = {
  type: "agent:status:update";
  timestamp: number;
  payload: {
    agentId: string;
    agentType: "ui" | "backend" | "database" | "integration" | "deployment";
    status: "idle" | "working" | "waiting" | "completed" | "failed";
    currentTask?: string | null;
    progress?: number | null;
    message?: string | null;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type AgentStatusUpdatePayload = AgentStatusUpdateEvent["payload"];

/** An agent finished a task and outputs its result. */
export type AgentOutputEvent = {
  type: "agent:output";
  timestamp: number;
  payload: {
    agentId: string;
    agentType: "ui" | "backend" | "database" | "integration" | "deployment";
    output: Record<string, unknown>;
    summary: string;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type AgentOutputPayload = AgentOutputEvent["payload"];

/** An agent failed (retryable or not). */
export type AgentErrorEvent = {
  type: "agent:error";
  timestamp: number;
  payload: {
    agentId: string;
    agentType: "ui" | "backend" | "database" | "integration" | "deployment";
    error: {
      code: string;
      message: string;
      details?: unknown;
      retryable: boolean;
      retryCount?: number | null;
    };
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type AgentErrorPayload = AgentErrorEvent["payload"];

/** The build started. */
export type BuildStartedEvent = {
  type: "build:started";
  timestamp: number;
  payload: {
    projectId?: string | null;
    estimatedDuration: number;
    phases: Array<string>;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type BuildStartedPayload = BuildStartedEvent["payload"];

/** The build's phase and progress. */
export type BuildProgressEvent = {
  type: "build:progress";
  timestamp: number;
  payload: {
    projectId?: string | null;
    currentPhase: string;
    phaseProgress: number;
    overallProgress: number;
    message?: string | null;
    estimatedTimeRemaining?: number | null;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type BuildProgressPayload = BuildProgressEvent["payload"];

/** The build completed. */
export type BuildCompletedEvent = {
  type: "build:completed";
  timestamp: number;
  payload: {
    projectId?: string | null;
    duration: number;
    previewUrl: string;
    stats: {
      componentsGenerated: number;
      apiEndpointsCreated: number;
      dataModelsCreated: number;
    };
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type BuildCompletedPayload = BuildCompletedEvent["payload"];

/** The build failed. */
export type BuildFailedEvent = {
  type: "build:failed";
  timestamp: number;
  payload: {
    projectId?: string | null;
    error: {
      phase: string;
      message: string;
      details?: unknown;
      suggestions?: Array<string> | null;
    };
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type BuildFailedPayload = BuildFailedEvent["payload"];

/** The build was cancelled. */
export type BuildCancelledEvent = {
  type: "build:cancelled";
  timestamp: number;
  payload: {
    projectId?: string | null;
    buildId: string;
    cancelledBy: string;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type BuildCancelledPayload = BuildCancelledEvent["payload"];

/** The deployment's stage and progress. */
export type DeploymentProgressEvent = {
  type: "deployment:progress";
  timestamp: number;
  payload: {
    deploymentId: string;
    environment: string;
    stage: "building" | "deploying" | "health-check";
    progress: number;
    message?: string | null;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type DeploymentProgressPayload = DeploymentProgressEvent["payload"];

/** The deployment succeeded. */
export type DeploymentSuccessEvent = {
  type: "deployment:success";
  timestamp: number;
  payload: {
    deploymentId: string;
    environment: string;
    url: string;
    healthStatus: string;
    duration: number;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type DeploymentSuccessPayload = DeploymentSuccessEvent["payload"];

/** The deployment failed. */
export type DeploymentFailedEvent = {
  type: "deployment:failed";
  timestamp: number;
  payload: {
    projectId?: string | null;
    deploymentId: string;
    error: {
      phase?: string | null;
      message: string;
      details?: unknown;
      suggestions?: Array<string> | null;
    };
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type DeploymentFailedPayload = DeploymentFailedEvent["payload"];

/** An error: of a client's event (its code), or published by a producer. */
export type ErrorEvent = {
  type: "error";
  timestamp: number;
  payload: {
    code: string;
    message: string;
    details?: unknown;
    recoverable: boolean;
    actions?: Array<{
      label: string;
      action: string;
    }> | null;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId?: string;
  seq?: number;
  eventId?: string;
};

export type ErrorPayload = ErrorEvent["payload"];

/** The user must choose: answer with user:decision:response before the deadline, or the default is taken. */
export type UserDecisionRequiredEvent = {
  type: "user:decision:required";
  timestamp: number;
  payload: {
    /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
    projectId: string;
    agentId?: string | null;
    decisionId: string;
    question: string;
    options: Array<{
      id: string;
      label: string;
      description?: string | null;
      preview?: string | null;
    }>;
    timeout: number;
    defaultOptionId: string;
    deadline: number;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type UserDecisionRequiredPayload = UserDecisionRequiredEvent["payload"];

/** A decision ended: answered by a user, defaulted at its timeout, or cancelled with its build. */
export type UserDecisionResolvedEvent = {
  type: "user:decision:resolved";
  timestamp: number;
  payload: {
    decisionId: string;
    resolvedBy: "user" | "timeout" | "cancelled";
    selectedOptionId?: string;
    userId?: string;
    feedback?: string;
  };
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  seq: number;
  eventId: string;
};

export type UserDecisionResolvedPayload = UserDecisionResolvedEvent["payload"];

/** Re-authenticates the connection with a new token (e.g. before the old one expires). */
export type AuthenticatePayload = {
  token: string;
};

export type AuthenticateAck = {
  ok: true;
  userId: string;
  username: string;
} | {
  ok: false;
  error: {
    code: string;
    message: string;
    details?: unknown;
  };
};

/** Joins the project's room: the events missed after lastSeq (or a snapshot), then project-joined, then live events. */
export type JoinProjectPayload = {
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  /** The seq of the last event the client has: the gateway replays what follows (or sends a snapshot when it is no longer in the log). */
  lastSeq?: number | null;
};

export type JoinProjectAck = {
  ok: true;
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
  members: number;
  seq: number;
  replayed?: number;
} | {
  ok: false;
  error: {
    code: string;
    message: string;
    details?: unknown;
  };
};

/** Leaves the project's room. */
export type LeaveProjectPayload = {
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
};

export type LeaveProjectAck = {
  ok: true;
  /** A project id: must be 1-128 characters of letters, digits, '-', '_', '.' or ':' */
  projectId: string;
} | {
  ok: false;
  error: {
    code: string;
    message: string;
    details?: unknown;
  };
};

/** Answers a decision (the first valid answer wins). */
export type UserDecisionResponsePayload = {
  decisionId: string;
  selectedOptionId: string;
  feedback?: string | null;
};

export type UserDecisionResponseAck = {
  ok: true;
  decisionId: string;
  selectedOptionId: string;
  resolvedBy: "user";
} | {
  ok: false;
  error: {
    code: string;
    message: string;
    details?: unknown;
  };
};

/** The answer to ping. */
export type PongPayload = null;

/** What the gateway emits to a client of /builder. */
export interface ServerToClientEvents {
  "authenticated": (event: AuthenticatedEvent) => void;
  "project-joined": (event: ProjectJoinedEvent) => void;
  "project:snapshot": (event: ProjectSnapshotEvent) => void;
  "ping": (event: PingEvent) => void;
  "agent:status:update": (event: AgentStatusUpdateEvent) => void;
  "agent:output": (event: AgentOutputEvent) => void;
  "agent:error": (event: AgentErrorEvent) => void;
  "build:started": (event: BuildStartedEvent) => void;
  "build:progress": (event: BuildProgressEvent) => void;
  "build:completed": (event: BuildCompletedEvent) => void;
  "build:failed": (event: BuildFailedEvent) => void;
  "build:cancelled": (event: BuildCancelledEvent) => void;
  "deployment:progress": (event: DeploymentProgressEvent) => void;
  "deployment:success": (event: DeploymentSuccessEvent) => void;
  "deployment:failed": (event: DeploymentFailedEvent) => void;
  "error": (event: ErrorEvent) => void;
  "user:decision:required": (event: UserDecisionRequiredEvent) => void;
  "user:decision:resolved": (event: UserDecisionResolvedEvent) => void;
}

/** What a client of /builder emits (the optional last argument is the ack callback). */
export interface ClientToServerEvents {
  "authenticate": (payload: AuthenticatePayload, ack?: (response: AuthenticateAck) => void) => void;
  "join-project": (payload: JoinProjectPayload, ack?: (response: JoinProjectAck) => void) => void;
  "leave-project": (payload: LeaveProjectPayload, ack?: (response: LeaveProjectAck) => void) => void;
  "user:decision:response": (payload: UserDecisionResponsePayload, ack?: (response: UserDecisionResponseAck) => void) => void;
  "pong": (payload?: null) => void;
}
