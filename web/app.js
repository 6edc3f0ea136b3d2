// The development dashboard of the /builder gateway. It is a client like any other: it connects
// exactly as the protocol document's "Client Implementation Example" does
// (io(origin + '/builder', { auth: { token } }), join-project, user:decision:response, rejoin on
// reconnect) with a token minted by the Development-only GET /dev/token, and renders the project's
// events: agents, build progress, decisions, deployment, errors.
//
// Every project event is an envelope {type, timestamp, payload, projectId, seq, eventId}; with
// connection state recovery the server adds a trailing offset argument, which is ignored here.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  /** The event types the gateway sends as project envelopes (the document's, plus the gateway's few). */
  const PROJECT_EVENTS = [
    'agent:status:update', 'agent:output', 'agent:error',
    'build:started', 'build:progress', 'build:completed', 'build:failed', 'build:cancelled',
    'user:decision:required', 'user:decision:resolved',
    'deployment:progress', 'deployment:success', 'deployment:failed',
  ];
  const AGENT_NAMES = { ui: 'UI', backend: 'Backend', database: 'Database', integration: 'Integration', deployment: 'Deployment' };
  const DEPLOYMENT_STAGES = ['building', 'deploying', 'health-check'];
  const MAX_LOG_ITEMS = 500;

  const state = {
    socket: null,
    user: null,
    projectId: null,
    /** The seq of the last project event applied: sent as lastSeq when rejoining, and drops duplicates. */
    lastSeq: null,
    agents: new Map(),
    /** Pending decisions by id, each with the local time its timeout ends. */
    decisions: new Map(),
    /** Every decision seen, to name the chosen option when it is resolved. */
    questions: new Map(),
    shownDecisionId: null,
    dismissed: new Set(),
    eventCount: 0,
    serverClosedUs: false,
  };

  // ---------------------------------------------------------------- connection

  async function fetchToken(user) {
    const response = await fetch(`/dev/token?user=${encodeURIComponent(user)}&projects=*`);
    if (!response.ok) {
      throw new Error(`GET /dev/token answered ${response.status}`);
    }
    return (await response.json()).token;
  }

  async function connect(user) {
    if (state.socket) {
      state.socket.disconnect();
      state.socket = null;
    }
    setConnection('connecting…', 'pending');
    let token;
    try {
      token = await fetchToken(user);
    } catch (err) {
      setConnection('no token', 'bad');
      addError('TOKEN', `Could not get a development token: ${err.message}`);
      return;
    }
    state.user = user;

    // as in the protocol document's client example
    const socket = io(location.origin + '/builder', { auth: { token } });
    state.socket = socket;

    // set by the manager's reconnect (which precedes the socket's connect) that has rejoined already
    let rejoined = false;

    socket.on('connect', () => {
      setConnection(`connected (${socket.io.engine.transport.name})`, 'good');
      if (!rejoined && state.projectId) {
        // a new socket (another user) or one the server had closed: back into the project, gap replayed
        join(state.projectId, { rejoin: true });
      }
      rejoined = false;
      socket.io.engine.once('upgrade', (transport) => setConnection(`connected (${transport.name})`, 'good'));
      $('join-button').disabled = false;
      if (socket.recovered) {
        logLine('connection state recovered: the server resends what this tab missed');
      }
    });

    socket.on('connect_error', (err) => {
      const detail = err.data && err.data.code ? `${err.data.code}: ${err.data.message}` : err.message;
      setConnection('connection refused', 'bad');
      addError(err.data && err.data.code ? err.data.code : 'CONNECT_ERROR', detail);
      if (err.data && err.data.code === 'TOKEN_EXPIRED') {
        refreshTokenAndReconnect(socket);
      }
    });

    socket.on('disconnect', (reason) => {
      setConnection(`disconnected: ${reason}`, 'bad');
      $('join-button').disabled = true;
      $('start-build-button').disabled = true;
      if (reason === 'io server disconnect') {
        // the server closed this session (expired token, missed heartbeats): a fresh token, then again
        refreshTokenAndReconnect(socket);
      }
    });

    // 认证成功
    socket.on('authenticated', (data) => {
      $('user').textContent = data.username && data.username !== data.userId ? `${data.username} (${data.userId})` : data.userId;
    });

    // 断线重连: rejoin the project with the last seq seen, so the gap is replayed in order
    socket.io.on('reconnect', (attempts) => {
      logLine(`reconnected after ${attempts} attempt(s); rejoining ${state.projectId || 'no project'}`);
      if (state.projectId) {
        join(state.projectId, { rejoin: true });
        rejoined = true;
      }
    });
    socket.io.on('reconnect_attempt', (attempt) => setConnection(`reconnecting (attempt ${attempt})…`, 'pending'));

    socket.on('project-joined', (data) => {
      if (data.projectId !== state.projectId) {
        return;
      }
      const members = data.members === 1 ? '1 member' : `${data.members} members`;
      setText('project-status', `joined ${data.projectId} · ${members} · log at seq ${data.seq}`);
    });

    socket.on('project:snapshot', (data) => {
      const snapshot = data && data.agents ? data : data && data.payload;
      if (snapshot && snapshot.projectId === state.projectId) {
        renderSnapshot(snapshot);
      }
    });

    for (const type of PROJECT_EVENTS) {
      // extra arguments (the recovery offset) are ignored
      socket.on(type, (event) => onProjectEvent(type, event));
    }

    socket.on('error', (event) => {
      if (event && Number.isInteger(event.seq)) {
        onProjectEvent('error', event); // an error published into the project's log
      } else {
        const p = (event && event.payload) || {};
        addError(p.code || 'ERROR', p.message || JSON.stringify(event), p.recoverable === false ? 'not recoverable' : '');
      }
    });

    // heartbeat of the document: answer each ping
    socket.on('ping', () => socket.emit('pong'));
  }

  async function refreshTokenAndReconnect(socket) {
    if (state.serverClosedUs || socket !== state.socket) {
      return;
    }
    state.serverClosedUs = true;
    try {
      socket.auth.token = await fetchToken(state.user);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (socket === state.socket) {
        socket.connect();
      }
    } catch (err) {
      addError('TOKEN', `Could not renew the development token: ${err.message}`);
    } finally {
      state.serverClosedUs = false;
    }
  }

  // ---------------------------------------------------------------- projects

  function join(projectId, { rejoin = false } = {}) {
    const socket = state.socket;
    if (!socket) {
      return;
    }
    if (!rejoin) {
      if (state.projectId && state.projectId !== projectId) {
        socket.emit('leave-project', { projectId: state.projectId });
      }
      state.projectId = projectId;
      state.lastSeq = null; // a fresh join gets a project:snapshot
    }
    const request = { projectId };
    if (rejoin && state.lastSeq !== null) {
      request.lastSeq = state.lastSeq;
    }
    setText('project-status', `joining ${projectId}…`);
    socket.emit('join-project', request, (ack) => {
      if (!ack || !ack.ok) {
        const error = (ack && ack.error) || {};
        setText('project-status', `could not join ${projectId}: ${error.message || 'no answer'}`);
        $('start-build-button').disabled = true;
        return;
      }
      $('start-build-button').disabled = false;
      document.body.dataset.joined = projectId;
      if (ack.replayed) {
        logLine(`rejoined ${projectId}: ${ack.replayed} missed event(s) replayed`);
      }
    });
  }

  async function startBuild() {
    const projectId = state.projectId;
    const faults = {
      transient: [{ kind: 'transient', phase: 'generate', agentType: 'backend', count: 2 }],
      fatal: [{ kind: 'fatal', phase: 'generate', agentType: 'backend', count: 1 }],
    }[$('fault-input').value] || [];
    const body = {
      requirements: $('requirements-input').value,
      simulate: true,
      deploy: $('deploy-input').checked,
      speed: Number($('speed-input').value) || 1,
      faults,
      startedBy: state.user,
    };
    setText('build-request-status', 'starting…');
    try {
      const response = await fetch(`/dev/projects/${encodeURIComponent(projectId)}/builds`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.status === 202) {
        setText('build-request-status', `build ${answer.buildId} started`);
      } else {
        const error = answer.error || {};
        setText('build-request-status', `${response.status} ${error.code || ''}: ${error.message || 'the build was not started'}`);
      }
    } catch (err) {
      setText('build-request-status', `the request failed: ${err.message}`);
    }
  }

  // ---------------------------------------------------------------- events

  function onProjectEvent(type, event) {
    if (!event || typeof event !== 'object' || !event.payload) {
      return;
    }
    if (event.projectId && event.projectId !== state.projectId) {
      return; // a late event of a project we left
    }
    if (Number.isInteger(event.seq)) {
      if (state.lastSeq !== null && event.seq <= state.lastSeq) {
        return; // already applied (recovered and replayed after a reconnect)
      }
      state.lastSeq = event.seq;
    }
    logEvent(event);
    const handler = handlers[type];
    if (handler) {
      handler(event.payload, event);
    }
  }

  const handlers = {
    'agent:status:update': (p) => {
      const agent = agentFor(p);
      for (const key of ['status', 'currentTask', 'progress', 'message']) {
        if (p[key] !== undefined) {
          agent[key] = p[key];
        }
      }
      renderAgent(agent);
    },
    'agent:output': (p) => {
      const agent = agentFor(p);
      agent.lastOutputSummary = p.summary;
      renderAgent(agent);
      addOutput(`${AGENT_NAMES[p.agentType] || p.agentType} agent`, p.summary);
    },
    'agent:error': (p) => {
      const agent = agentFor(p);
      const error = p.error || {};
      agent.lastError = error;
      renderAgent(agent);
      const retry = error.retryable ? `retryable, attempt ${error.retryCount ?? '?'}` : 'not retryable';
      addError(error.code || 'AGENT_ERROR', `${AGENT_NAMES[p.agentType] || p.agentType} agent: ${error.message}`, retry);
    },
    'build:started': (p) => {
      resetBuildView();
      renderBuild({ state: 'running', phases: p.phases, overallProgress: 0, estimatedDuration: p.estimatedDuration, estimatedTimeRemaining: p.estimatedDuration });
    },
    'build:progress': (p) => renderBuild({ state: 'running', ...p }),
    'build:completed': (p) => renderBuild({ state: 'completed', overallProgress: 100, result: p, estimatedTimeRemaining: 0 }),
    'build:failed': (p) => {
      const error = p.error || {};
      renderBuild({ state: 'failed', error });
      addError('BUILD_FAILED', `${error.phase ? `${error.phase}: ` : ''}${error.message}`, (error.suggestions || []).join(' · '));
    },
    'build:cancelled': (p) => renderBuild({ state: 'cancelled', message: `cancelled by ${p.cancelledBy || 'someone'} during ${p.phase || 'the build'}` }),
    'user:decision:required': (p) => {
      state.decisions.set(p.decisionId, { ...p, endsAt: Date.now() + (p.timeout || 0) * 1000 });
      state.questions.set(p.decisionId, p);
      showDecision();
    },
    'user:decision:resolved': (p) => {
      const decision = state.questions.get(p.decisionId);
      state.decisions.delete(p.decisionId);
      state.dismissed.delete(p.decisionId);
      if (decision) {
        const option = (decision.options || []).find((o) => o.id === p.selectedOptionId);
        const by = p.resolvedBy === 'user' ? `by ${p.userId || 'a user'}` : `by ${p.resolvedBy}`;
        addOutput('decision', `${decision.question} → ${option ? option.label : p.selectedOptionId} (${by})`);
      }
      if (state.shownDecisionId === p.decisionId) {
        closeDecision();
      }
      showDecision();
    },
    'deployment:progress': (p) => renderDeployment({ state: 'running', ...p }),
    'deployment:success': (p) => renderDeployment({ state: 'succeeded', progress: 100, ...p }),
    'deployment:failed': (p) => {
      const error = p.error || {};
      renderDeployment({ state: 'failed', message: error.message, stage: error.stage });
      addError(error.code || 'DEPLOYMENT_FAILED', `deployment: ${error.message}`);
    },
    error: (p) => addError(p.code || 'ERROR', p.message || '', p.recoverable === false ? 'not recoverable' : ''),
  };

  function renderSnapshot(s) {
    resetBuildView();
    state.decisions.clear();
    state.dismissed.clear();
    closeDecision();
    state.lastSeq = Number.isInteger(s.seq) ? s.seq : null;
    for (const a of s.agents || []) {
      const agent = agentFor(a);
      Object.assign(agent, a);
      renderAgent(agent);
    }
    const build = s.build;
    if (build) {
      renderBuild({
        ...build,
        state: build.state || 'running',
        result: build.state === 'completed' ? build.result : undefined,
        estimatedTimeRemaining: build.state === 'running' ? build.estimatedTimeRemaining : 0,
      });
    } else {
      renderBuild({ state: 'none' });
    }
    if (s.deployment) {
      const d = s.deployment;
      renderDeployment({ ...d, message: d.message || (d.error && d.error.message), progress: d.state === 'succeeded' ? 100 : d.progress });
    }
    const now = Date.now();
    for (const d of s.pendingDecisions || []) {
      state.decisions.set(d.decisionId, { ...d, projectId: s.projectId, endsAt: now + (d.timeLeft ?? d.timeout ?? 0) * 1000 });
      state.questions.set(d.decisionId, d);
    }
    logLine(`snapshot of ${s.projectId} at seq ${s.seq}: ${(s.agents || []).length} agent(s), build ${build ? build.state : 'none'}, ${(s.pendingDecisions || []).length} pending decision(s)`);
    showDecision();
  }

  // ---------------------------------------------------------------- rendering

  function setText(id, text) {
    $(id).textContent = text;
  }

  function setConnection(text, tone) {
    const el = $('connection-status');
    el.textContent = text;
    el.className = `pill pill-${tone === 'good' ? 'good' : tone === 'bad' ? 'bad' : 'pending'}`;
  }

  function setPill(id, text, tone) {
    const el = $(id);
    el.textContent = text;
    el.className = `pill pill-${tone}`;
    el.dataset.state = text;
  }

  function setProgress(id, value) {
    const bar = $(id);
    const pct = Math.max(0, Math.min(100, Math.round(Number(value) || 0)));
    bar.setAttribute('aria-valuenow', String(pct));
    bar.querySelector('.progress-fill').style.width = `${pct}%`;
    const text = $(`${id}-text`);
    if (text) {
      text.textContent = `${pct}%`;
    }
  }

  function formatSeconds(seconds) {
    if (seconds === undefined || seconds === null || Number.isNaN(Number(seconds))) {
      return '—';
    }
    const s = Math.max(0, Math.round(Number(seconds)));
    return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  }

  const TONES = { running: 'pending', completed: 'good', succeeded: 'good', failed: 'bad', cancelled: 'bad', none: 'idle' };

  let phases = [];
  function renderBuild(b) {
    setPill('build-state', b.state === 'none' ? 'no build' : b.state, TONES[b.state] || 'idle');
    if (b.overallProgress !== undefined) {
      setProgress('build-progress', b.overallProgress);
    }
    if (b.currentPhase !== undefined) {
      setText('build-phase', b.currentPhase);
    }
    if (b.phaseProgress !== undefined) {
      setText('build-phase-progress', `${b.phaseProgress}%`);
    }
    if (b.estimatedTimeRemaining !== undefined) {
      setText('build-eta', formatSeconds(b.estimatedTimeRemaining));
    }
    if (b.message !== undefined) {
      setText('build-message', b.message);
    }
    if (Array.isArray(b.phases)) {
      phases = b.phases;
    }
    const list = $('build-phases');
    list.replaceChildren();
    const current = b.state === 'completed' ? phases.length : phases.indexOf(b.currentPhase ?? $('build-phase').textContent);
    phases.forEach((phase, i) => {
      const li = document.createElement('li');
      li.textContent = phase;
      li.className = i < current ? 'done' : i === current ? (b.state === 'failed' ? 'failed' : 'active') : '';
      if (i === current) {
        li.setAttribute('aria-current', 'step');
      }
      list.append(li);
    });

    const result = $('build-result');
    if (b.state === 'completed' && b.result) {
      const r = b.result;
      result.replaceChildren();
      const line = document.createElement('p');
      line.append(`Completed in ${formatSeconds(r.duration)}. `);
      if (r.previewUrl) {
        const link = document.createElement('a');
        link.href = r.previewUrl;
        link.textContent = 'Open the preview';
        link.id = 'preview-url';
        link.target = '_blank';
        link.rel = 'noopener';
        line.append(link);
      }
      result.append(line);
      if (r.stats) {
        const stats = document.createElement('p');
        stats.className = 'subtle';
        stats.textContent = Object.entries(r.stats).map(([k, v]) => `${k}: ${v}`).join(' · ');
        result.append(stats);
      }
      result.className = 'result good';
      result.hidden = false;
    } else if (b.state === 'failed' && b.error) {
      result.replaceChildren();
      const line = document.createElement('p');
      line.textContent = `Failed${b.error.phase ? ` in ${b.error.phase}` : ''}: ${b.error.message}`;
      result.append(line);
      if (b.error.suggestions && b.error.suggestions.length) {
        const ul = document.createElement('ul');
        for (const suggestion of b.error.suggestions) {
          const li = document.createElement('li');
          li.textContent = suggestion;
          ul.append(li);
        }
        result.append(ul);
      }
      result.className = 'result bad';
      result.hidden = false;
    } else if (b.state === 'running' || b.state === 'none') {
      result.hidden = true;
    }
  }

  function resetBuildView() {
    state.agents.clear();
    $('agents').replaceChildren();
    $('agents-empty').hidden = false;
    $('outputs').replaceChildren();
    phases = [];
    for (const id of ['build-phase', 'build-phase-progress', 'build-eta', 'build-message']) {
      setText(id, '—');
    }
    setProgress('build-progress', 0);
    $('build-result').hidden = true;
    renderDeployment({ state: 'none', progress: 0, message: '—' });
  }

  function agentFor(p) {
    let agent = state.agents.get(p.agentId);
    if (!agent) {
      agent = { agentId: p.agentId, agentType: p.agentType, status: 'idle', progress: 0 };
      state.agents.set(p.agentId, agent);
    }
    if (p.agentType) {
      agent.agentType = p.agentType;
    }
    return agent;
  }

  function renderAgent(agent) {
    let card = document.querySelector(`[data-agent-id="${CSS.escape(agent.agentId)}"]`);
    if (!card) {
      card = document.createElement('li');
      card.className = 'card';
      card.dataset.testid = 'agent-card';
      card.dataset.agentId = agent.agentId;
      card.innerHTML = `
        <div class="card-head"><h3 class="agent-type"></h3><span class="pill agent-status" role="status"></span></div>
        <p class="agent-task"></p>
        <div class="progress-line">
          <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><div class="progress-fill"></div></div>
          <span class="progress-text">0%</span>
        </div>
        <p class="agent-message subtle"></p>
        <p class="agent-output"></p>
        <p class="agent-error error-text"></p>
        <p class="agent-id subtle mono"></p>`;
      $('agents').append(card);
      $('agents-empty').hidden = true;
    }
    const tone = { working: 'pending', waiting: 'warn', completed: 'good', failed: 'bad' }[agent.status] || 'idle';
    card.dataset.status = agent.status;
    card.dataset.agentType = agent.agentType;
    card.querySelector('.agent-type').textContent = `${AGENT_NAMES[agent.agentType] || agent.agentType} agent`;
    const status = card.querySelector('.agent-status');
    status.textContent = agent.status;
    status.className = `pill agent-status pill-${tone}`;
    card.querySelector('.agent-task').textContent = agent.currentTask || '';
    const pct = Math.max(0, Math.min(100, Math.round(Number(agent.progress) || 0)));
    const bar = card.querySelector('.progress');
    bar.setAttribute('aria-valuenow', String(pct));
    bar.setAttribute('aria-label', `${agent.agentType} agent progress`);
    bar.querySelector('.progress-fill').style.width = `${pct}%`;
    card.querySelector('.progress-text').textContent = `${pct}%`;
    card.querySelector('.agent-message').textContent = agent.message || '';
    card.querySelector('.agent-output').textContent = agent.lastOutputSummary ? `Output: ${agent.lastOutputSummary}` : '';
    card.querySelector('.agent-error').textContent = agent.lastError && agent.status !== 'completed' ? `${agent.lastError.code}: ${agent.lastError.message}` : '';
    card.querySelector('.agent-id').textContent = agent.agentId;
  }

  function renderDeployment(d) {
    const label = d.state === 'none' ? 'none' : d.state;
    setPill('deployment-state', label, TONES[d.state] || 'idle');
    if (d.progress !== undefined) {
      setProgress('deployment-progress', d.progress);
    }
    if (d.message !== undefined) {
      setText('deployment-message', `${d.environment ? `[${d.environment}] ` : ''}${d.message || ''}`);
    }
    const current = d.state === 'succeeded' ? DEPLOYMENT_STAGES.length : DEPLOYMENT_STAGES.indexOf(d.stage);
    for (const li of $('deployment-stages').children) {
      const i = DEPLOYMENT_STAGES.indexOf(li.dataset.stage);
      li.className = d.state === 'none' ? '' : i < current ? 'done' : i === current ? (d.state === 'failed' ? 'failed' : 'active') : '';
      if (i === current) {
        li.setAttribute('aria-current', 'step');
      } else {
        li.removeAttribute('aria-current');
      }
    }
    const result = $('deployment-result');
    if (d.state === 'succeeded' && d.url) {
      const link = $('deployment-url');
      link.href = d.url;
      link.textContent = d.url;
      setText('deployment-health', `${d.healthStatus || ''}${d.duration !== undefined ? ` · ${formatSeconds(d.duration)}` : ''}`);
      setText('deployment-message', `[${d.environment || 'test'}] deployed`);
      result.hidden = false;
    } else {
      result.hidden = true;
    }
  }

  function addListItem(listId, build) {
    const list = $(listId);
    const li = document.createElement('li');
    build(li);
    list.prepend(li);
    while (list.children.length > MAX_LOG_ITEMS) {
      list.lastElementChild.remove();
    }
  }

  function addOutput(source, text) {
    addListItem('outputs', (li) => {
      const strong = document.createElement('strong');
      strong.textContent = `${source}: `;
      li.append(strong, text || '');
    });
  }

  function addError(code, message, detail) {
    addListItem('errors', (li) => {
      const strong = document.createElement('strong');
      strong.textContent = code;
      li.append(time(), strong, ` ${message}`);
      if (detail) {
        const span = document.createElement('span');
        span.className = 'subtle';
        span.textContent = ` (${detail})`;
        li.append(span);
      }
    });
  }

  function time(ms = Date.now()) {
    const el = document.createElement('time');
    const date = new Date(ms);
    el.dateTime = date.toISOString();
    el.textContent = `${date.toLocaleTimeString()} `;
    el.className = 'subtle';
    return el;
  }

  function logEvent(event) {
    state.eventCount += 1;
    setText('event-count', `(${state.eventCount})`);
    addListItem('events', (li) => {
      li.append(time(event.timestamp), `#${event.seq ?? '-'} ${event.type}`);
      li.title = JSON.stringify(event.payload);
    });
  }

  function logLine(text) {
    addListItem('events', (li) => {
      li.append(time(), text);
      li.className = 'subtle';
    });
  }

  // ---------------------------------------------------------------- decisions

  let countdown = null;

  /** Shows the oldest pending decision the user has not put aside (or keeps the one shown). */
  function showDecision() {
    updateDecisionButton();
    if (state.shownDecisionId && state.decisions.has(state.shownDecisionId)) {
      return;
    }
    const next = [...state.decisions.values()].find((d) => !state.dismissed.has(d.decisionId));
    if (!next) {
      return;
    }
    state.shownDecisionId = next.decisionId;
    const modal = $('decision-modal');
    modal.dataset.decisionId = next.decisionId;
    setText('decision-question', next.question);
    setText('decision-error', '');
    $('decision-feedback').value = '';
    const options = $('decision-options');
    options.replaceChildren();
    for (const option of next.options || []) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'option';
      button.dataset.testid = 'decision-option';
      button.dataset.optionId = option.id;
      const label = document.createElement('strong');
      label.textContent = option.label;
      button.append(label);
      if (option.description) {
        const description = document.createElement('span');
        description.textContent = option.description;
        button.append(description);
      }
      if (option.id === next.defaultOptionId) {
        const badge = document.createElement('em');
        badge.textContent = 'default';
        button.append(badge);
      }
      button.addEventListener('click', () => respondToDecision(next.decisionId, option.id));
      options.append(button);
    }
    const later = document.createElement('button');
    later.type = 'button';
    later.className = 'secondary';
    later.id = 'decision-later';
    later.textContent = 'Later';
    later.addEventListener('click', () => {
      state.dismissed.add(next.decisionId);
      closeDecision();
    });
    options.append(later);

    const tick = () => {
      const left = Math.max(0, Math.ceil((next.endsAt - Date.now()) / 1000));
      setText('decision-meta', `asked by agent ${next.agentId || '?'} · the default is chosen in ${formatSeconds(left)} without an answer`);
    };
    tick();
    clearInterval(countdown);
    countdown = setInterval(tick, 1000);
    if (!modal.open) {
      modal.showModal();
      options.querySelector('button').focus();
    }
    updateDecisionButton();
  }

  function closeDecision() {
    clearInterval(countdown);
    state.shownDecisionId = null;
    const modal = $('decision-modal');
    delete modal.dataset.decisionId;
    if (modal.open) {
      modal.close();
    }
    updateDecisionButton();
  }

  function updateDecisionButton() {
    const button = $('decision-reopen');
    const count = state.decisions.size;
    button.hidden = count === 0 || state.shownDecisionId !== null;
    button.textContent = `Answer pending decision${count === 1 ? '' : 's'} (${count})`;
  }

  // 发送决策响应
  function respondToDecision(decisionId, optionId) {
    const feedback = $('decision-feedback').value.trim();
    const response = { decisionId, selectedOptionId: optionId };
    if (feedback) {
      response.feedback = feedback;
    }
    for (const button of $('decision-options').querySelectorAll('button')) {
      button.disabled = true;
    }
    state.socket.emit('user:decision:response', response, (ack) => {
      if (ack && ack.ok) {
        // every tab closes on user:decision:resolved; this one need not wait for it
        state.decisions.delete(decisionId);
        if (state.shownDecisionId === decisionId) {
          closeDecision();
        }
        showDecision();
        return;
      }
      const error = (ack && ack.error) || {};
      if (error.code === 'DECISION_ALREADY_RESOLVED' || error.code === 'DECISION_NOT_FOUND') {
        state.decisions.delete(decisionId);
        closeDecision();
        showDecision();
        return;
      }
      setText('decision-error', `${error.code || 'ERROR'}: ${error.message || 'no answer from the server'}`);
      for (const button of $('decision-options').querySelectorAll('button')) {
        button.disabled = false;
      }
    });
  }

  // ---------------------------------------------------------------- forms

  function init() {
    const params = new URLSearchParams(location.search);
    if (params.get('user')) {
      $('user-input').value = params.get('user');
    }
    if (params.get('project')) {
      $('project-input').value = params.get('project');
    }

    $('connect-form').addEventListener('submit', (e) => {
      e.preventDefault();
      connect($('user-input').value.trim());
    });
    $('join-form').addEventListener('submit', (e) => {
      e.preventDefault();
      join($('project-input').value.trim());
    });
    $('build-form').addEventListener('submit', (e) => {
      e.preventDefault();
      startBuild();
    });
    $('decision-modal').addEventListener('cancel', () => {
      // Escape puts the decision aside; the button under the build reopens it
      if (state.shownDecisionId) {
        state.dismissed.add(state.shownDecisionId);
      }
      closeDecision();
    });
    $('decision-reopen').addEventListener('click', () => {
      state.dismissed.clear();
      showDecision();
    });

    if (typeof io !== 'function') {
      setConnection('socket.io-client did not load', 'bad');
      return;
    }
    connect($('user-input').value.trim());
  }

  // for the browser console and the end-to-end test (which cuts the connection to watch the page recover)
  window.builderDashboard = state;

  init();
})();
