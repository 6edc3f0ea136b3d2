// Deliberately wrong uses of the generated declarations: every line marked "wrong:" must be a
// compile error under tsc --strict (tests/Contracts.Tests checks each one is reported).
import { io, Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '../../docs/builder-events';

const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io('http://localhost:3001/builder');

socket.emit('join-project', { project: 'xxx' }); // wrong: projectId is required
socket.emit('join-project', { projectId: 42 }); // wrong: projectId is a string
socket.emit('user:decision:response', { decisionId: 'd' }); // wrong: selectedOptionId is missing
socket.emit('join-projects', { projectId: 'xxx' }); // wrong: no such client event
socket.on('build:progress', (event) => {
  const phase: number = event.payload.currentPhase; // wrong: currentPhase is a string
  console.log(phase);
});
socket.on('agent:status:update', (event) => {
  if (event.payload.status === 'running') { // wrong: not one of the statuses
    console.log(event.payload.agentType);
  }
});
socket.on('agent:status:updated', () => {}); // wrong: no such server event
