// Drives Anthropic's TypeScript SDK (@anthropic-ai/sdk) through llmproc:
// a streamed request with thinking and a tool (the SDK's stream helper
// assembles the thinking block, its signature and the tool_use block), then
// the second turn with the first turn's content sent back as it came
// (thinking blocks included) and the tool's result, then
// messages.countTokens. Prints one JSON object.
// Usage: node anthropic_sdk.mjs <baseUrl> <model> <apiKey>
import Anthropic from "@anthropic-ai/sdk";

const [baseURL, model, apiKey] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const out = {};

const tools = [{
  name: "get_weather",
  description: "The weather in a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}];
const thinking = { type: "enabled", budget_tokens: 1024 };
const ask = { role: "user", content: "What is the weather in Paris?" };

const stream = client.messages.stream({ model, max_tokens: 2048, thinking, tools, messages: [ask] });
const events = [];
stream.on("streamEvent", (ev) => events.push(ev.type));
const first = await stream.finalMessage();
out.events = events;
out.first = first;

const toolUse = first.content.find((b) => b.type === "tool_use");
const second = await client.messages.create({
  model, max_tokens: 2048, thinking, tools,
  messages: [ask, { role: "assistant", content: first.content },
    { role: "user", content: [{ type: "tool_result", tool_use_id: toolUse?.id ?? "", content: "sunny" }] }],
});
out.second = second;

const count = await client.messages.countTokens({ model, thinking, tools, messages: [ask] });
out.inputTokens = count.input_tokens;
console.log(JSON.stringify(out));
