// The protocol document's "Client Implementation Example", typed with the generated declarations
// (docs/builder-events.d.ts). Compiled by tests/Contracts.Tests with tsc --strict. Two changes
// from the document: the socket's type names the events, and 'reconnect' is listened to on the
// Manager (socket.io), where socket.io-client 4 emits it (a Socket never emits 'reconnect').
import { io, Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents, UserDecisionRequiredPayload } from '../../docs/builder-events';

declare function updateAgentUI(payload: { agentType: string; status: string; progress?: number | null }): void;
declare function updateProgressBar(percent: number): void;
declare function showDecisionModal(payload: UserDecisionRequiredPayload): void;
declare const currentProjectId: string;

const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io('http://localhost:3001/builder', {
  auth: {
    token: localStorage.getItem('jwt'),
  },
});

// 认证成功
socket.on('authenticated', (data) => {
  console.log('Authenticated as:', data.username);
});

// 加入项目房间
socket.emit('join-project', { projectId: 'xxx' });

// 监听Agent状态更新
socket.on('agent:status:update', (event) => {
  updateAgentUI(event.payload);
});

// 监听构建进度
socket.on('build:progress', (event) => {
  updateProgressBar(event.payload.overallProgress);
});

// 处理用户决策请求
socket.on('user:decision:required', (event) => {
  showDecisionModal(event.payload);
});

// 发送决策响应
export function respondToDecision(decisionId: string, optionId: string) {
  socket.emit('user:decision:response', {
    decisionId,
    selectedOptionId: optionId,
  });
}

// 断线重连
socket.io.on('reconnect', () => {
  console.log('Reconnected, rejoining project...');
  socket.emit('join-project', { projectId: currentProjectId });
});

// beyond the document: the heartbeat, resuming with lastSeq, acks and the error event
socket.on('ping', () => socket.emit('pong'));
let lastSeq = 0;
socket.on('build:completed', (event) => {
  lastSeq = event.seq;
  console.log(event.payload.previewUrl, event.payload.stats.componentsGenerated);
});
socket.emit('join-project', { projectId: 'xxx', lastSeq }, (ack) => {
  if (ack.ok) {
    console.log('members', ack.members);
  } else {
    console.error(ack.error.code, ack.error.message);
  }
});
socket.on('error', (event) => {
  console.error(event.payload.code, event.payload.recoverable);
});
