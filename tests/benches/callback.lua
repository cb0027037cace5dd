-- wrk script of the web_load bench: replays pre-generated sign-in callbacks, one per request, each with
-- its own session cookie. PAIRS_FILE holds "path?code=…&state=…<TAB>Cookie header" lines; thread i of
-- WRK_THREADS takes the lines i, i + n, i + 2n, …. A thread that runs out records it and asks for
-- /healthz instead, so the bench can tell a run that needed more pairs (and discard it).

local threads = {}
local created = 0

function setup(thread)
   thread:set("id", created)
   created = created + 1
   table.insert(threads, thread)
end

function init(args)
   local n = tonumber(os.getenv("WRK_THREADS") or "1")
   callbacks = {}
   local i = 0
   for line in io.lines(os.getenv("PAIRS_FILE")) do
      if i % n == id then
         local path, cookie = line:match("^([^\t]+)\t(.*)$")
         table.insert(callbacks, { path, cookie })
      end
      i = i + 1
   end
   nxt = 1
   exhausted = 0
   redirected = 0
   other = 0
end

function request()
   local pair = callbacks[nxt]
   if pair == nil then
      exhausted = exhausted + 1
      return wrk.format("GET", "/healthz")
   end
   nxt = nxt + 1
   return wrk.format("GET", pair[1], { ["Cookie"] = pair[2] })
end

function response(status, headers, body)
   if status == 303 then
      redirected = redirected + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local sent, ok, bad, out = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      sent = sent + (thread:get("nxt") - 1)
      ok = ok + thread:get("redirected")
      bad = bad + thread:get("other")
      out = out + thread:get("exhausted")
   end
   io.write(string.format("callbacks: sent=%d redirected=%d other=%d exhausted=%d\n",
      sent, ok, bad, out))
end
