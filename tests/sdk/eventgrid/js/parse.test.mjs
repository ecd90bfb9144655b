// The raw bodies the Python suite recorded (EVENTGRID_BODIES_FILE, written by
// ../test_parsers.py's scenario) through the official JS deserializer, @azure/eventgrid 5.12.0
// (events.md §8): every Event Grid schema body through deserializeEventGridEvents, every
// CloudEvents body through deserializeCloudEvents, and the times they let through unparsed
// (`Invalid Date`) checked with isNaN. No bodies, or none of a schema, is a failure.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EventGridDeserializer, isSystemEvent } from "@azure/eventgrid";

const file = process.env.EVENTGRID_BODIES_FILE;
const CT = "Microsoft.Communication.";

function load() {
  assert.ok(file, "EVENTGRID_BODIES_FILE is not set (run ../run.sh)");
  const records = JSON.parse(readFileSync(file, "utf8"));
  assert.ok(Array.isArray(records) && records.length > 0, `no recorded deliveries in ${file}`);
  return records;
}

test("every Event Grid schema body deserializes with deserializeEventGridEvents", async () => {
  const bodies = load().filter((r) => r.schema === "EventGridSchema");
  assert.ok(bodies.length > 0, "no Event Grid schema deliveries recorded");
  const deserializer = new EventGridDeserializer();
  for (const { body } of bodies) {
    const events = await deserializer.deserializeEventGridEvents(body);
    assert.ok(events.length >= 1);
    for (const event of events) {
      assert.ok(!isNaN(event.eventTime), `eventTime of ${event.id} does not parse`);
      assert.ok(event.eventType.startsWith(CT + "Chat"), event.eventType);
      assert.equal(event.dataVersion, "1.0");
      assert.equal(event.metadataVersion, "1");
      assert.equal(typeof event.data, "object");
    }
  }
});

test("every CloudEvents body deserializes with deserializeCloudEvents", async () => {
  const bodies = load().filter((r) => r.schema === "CloudEventSchemaV1_0");
  assert.ok(bodies.length > 0, "no CloudEvents deliveries recorded");
  const deserializer = new EventGridDeserializer();
  for (const { body } of bodies) {
    const events = await deserializer.deserializeCloudEvents(body);
    assert.ok(events.length >= 1);
    for (const event of events) {
      assert.ok(!isNaN(event.time), `time of ${event.id} does not parse`);
      assert.equal(event.specversion, "1.0");
      assert.equal(event.datacontenttype, "application/json");
      assert.ok(event.type.startsWith(CT + "Chat"), event.type);
      assert.equal(typeof event.data, "object");
    }
  }
});

test("isSystemEvent recognises a delivered chat message event", async () => {
  const [record] = load().filter((r) => r.schema === "EventGridSchema" && r.body.includes(CT + "ChatMessageReceivedInThread"));
  assert.ok(record, "no ChatMessageReceivedInThread delivery recorded");
  const [event] = await new EventGridDeserializer().deserializeEventGridEvents(record.body);
  assert.ok(isSystemEvent("Microsoft.Communication.ChatMessageReceivedInThread", event));
});
