// Drives the official OpenAI Node SDK's Responses API (openai) through
// llmproc. One scenario per run, printing one JSON object:
//   json       responses.create, JSON
//   stream     responses.create({stream: true}): the event types and text
//   tools      a function tool round trip: the call, then the full history
//              with its function_call_output
//   previous   two turns chained by previous_response_id, then
//              responses.retrieve of the second and responses.delete of the first
//   store      responses.create({store: false}), then responses.retrieve of it
// Usage: node openai_responses.mjs <scenario> <baseUrl> <model>
import OpenAI from "openai";

const [scenario, baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "sk-llmproc-client", maxRetries: 0 });
const out = {};

const weather = [{
  type: "function",
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true,
}];

async function status(p) {
  try {
    await p;
    return 200;
  } catch (e) {
    return e.status ?? String(e);
  }
}

switch (scenario) {
  case "json": {
    const r = await client.responses.create({ model, input: "Say hello", instructions: "Be brief." });
    Object.assign(out, { id: r.id, text: r.output_text, status: r.status, usage: r.usage });
    break;
  }
  case "stream": {
    const stream = await client.responses.create({ model, input: "Say hello", stream: true });
    out.types = [];
    out.text = "";
    for await (const ev of stream) {
      out.types.push(ev.type);
      if (ev.type === "response.output_text.delta") out.text += ev.delta;
      if (ev.type === "response.completed") Object.assign(out, { id: ev.response.id, usage: ev.response.usage });
    }
    break;
  }
  case "tools": {
    const input = [{ role: "user", content: "What is the weather in Paris?" }];
    const first = await client.responses.create({ model, input, tools: weather });
    const call = first.output.find((it) => it.type === "function_call");
    out.call = call ? { name: call.name, call_id: call.call_id, arguments: call.arguments } : null;
    if (call) {
      input.push(...first.output, { type: "function_call_output", call_id: call.call_id, output: "sunny, 24°C" });
      const second = await client.responses.create({ model, input, tools: weather });
      out.text = second.output_text;
    }
    break;
  }
  case "previous": {
    const first = await client.responses.create({ model, input: "My name is Ada." });
    const second = await client.responses.create({ model, input: "What is my name?", previous_response_id: first.id });
    const got = await client.responses.retrieve(second.id);
    Object.assign(out, { first: first.id, second: second.id, text: second.output_text, retrieved: got.id, retrievedText: got.output_text });
    const del = await client.responses.delete(first.id);
    out.deleted = del === undefined ? true : del;
    out.afterDelete = await status(client.responses.retrieve(first.id));
    break;
  }
  case "store": {
    const r = await client.responses.create({ model, input: "Forget this.", store: false });
    Object.assign(out, { id: r.id, text: r.output_text, retrieve: await status(client.responses.retrieve(r.id)) });
    break;
  }
  default:
    throw new Error("unknown scenario " + scenario);
}
console.log(JSON.stringify(out));
