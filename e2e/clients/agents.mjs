// Drives the OpenAI Agents SDK (@openai/agents) through llmproc: one agent
// with one function tool, run to completion on the Responses API. Tracing
// is off (it would export to OpenAI). Prints one JSON object: the final
// output and the tool's calls.
// Usage: node agents.mjs <baseUrl> <model>
import OpenAI from "openai";
import { Agent, run, tool, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled } from "@openai/agents";

const [baseURL, model] = process.argv.slice(2);
setTracingDisabled(true);
setOpenAIAPI("responses");
setDefaultOpenAIClient(new OpenAI({ baseURL, apiKey: "sk-llmproc-client", maxRetries: 0 }));

const calls = [];
const getWeather = tool({
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true,
  execute: async ({ city }) => {
    calls.push(city);
    return `sunny in ${city}, 24°C`;
  },
});
const agent = new Agent({ name: "Weather", instructions: "Answer with the weather tool.", model, tools: [getWeather] });
const result = await run(agent, "What is the weather in Paris?");
console.log(JSON.stringify({ finalOutput: result.finalOutput, calls }));
