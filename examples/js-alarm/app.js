// js-alarm: a message handler in JavaScript for Arcella (docs/messaging.md).
//
// The daemon hands it every message published on the topics its
// deployment subscribes to (`home/+/temp`: a room's temperature in °C, as
// text), one at a time. A reading above the `limit` of its configuration
// (wasi:config) is an alarm: it logs a warning (wasi:logging), counts the
// room's alarms in key-value state (wasi:keyvalue) and publishes
// `alerts/ROOM` (wasi:messaging) with the reading and the count. A message
// that is not a number is refused: the handler returns an error, which the
// daemon logs and counts as failed.

import { log } from 'wasi:logging/logging@0.1.0-draft';
import { get } from 'wasi:config/store@0.2.0-rc.1';
import { open } from 'wasi:keyvalue/store@0.2.0-draft';
import { increment } from 'wasi:keyvalue/atomics@0.2.0-draft';
import { Client, Message } from 'wasi:messaging/types@0.2.0-draft';
import { send } from 'wasi:messaging/producer@0.2.0-draft';

const CONTEXT = 'js-alarm';
const utf8 = new TextEncoder();
const text = new TextDecoder();

/** The alarm threshold in °C: `limit` of the configuration, else 30. */
function limit() {
  try {
    const value = Number(get('limit') ?? '30');
    return Number.isFinite(value) ? value : 30;
  } catch {
    return 30;
  }
}

/** Adds one to the room's alarm count (bucket `default`); 0 without a
 * key-value grant. */
function countAlarm(room) {
  try {
    return increment(open('default'), `alarms.${room}`, 1n);
  } catch (err) {
    log('warn', CONTEXT, `alarms are not counted: ${err.payload?.tag ?? err}`);
    return 0n;
  }
}

function handle(message) {
  const topic = message.topic() ?? '';
  const room = topic.split('/')[1] ?? 'unknown';
  const body = text.decode(message.data()).trim();
  const celsius = Number(body);
  if (body === '' || !Number.isFinite(celsius)) {
    // An error result: the daemon logs it and counts the message as failed.
    throw { tag: 'other', val: `a reading is a number of °C, not ${JSON.stringify(body)}` };
  }
  const threshold = limit();
  if (celsius <= threshold) {
    log('debug', CONTEXT, `${room}: ${celsius} °C, under ${threshold} °C`);
    return;
  }
  const alarms = countAlarm(room);
  log('warn', CONTEXT, `${room}: ${celsius} °C is above ${threshold} °C (alarm ${alarms})`);
  const alert = new Message(utf8.encode(JSON.stringify({ room, celsius, limit: threshold, alarms: Number(alarms) })));
  alert.setContentType('application/json');
  send(Client.connect('js-alarm'), `alerts/${room}`, alert);
}

export const incomingHandler = { handle };
