-- busted output handler for scorch: busted's usual terminal output, then
-- one closing line that CI reads:
--
--   N passed, N failed[, N skipped]
--
-- "failed" counts failures and errors alike (a spec file that does not load,
-- an error in a describe block or a hook); "skipped" counts pending specs.
-- busted's own exit status is left alone: non-zero when anything failed.
return function(options)
  local busted = require "busted"
  local term = require "term"

  local tty = io.type(io.stdout) == "file" and term.isatty(io.stdout)
  local inner = require("busted.outputHandlers." ..
    (tty and "utfTerminal" or "plainTerminal"))(options)

  -- 'exit' is published once, after the last suite and its report.
  busted.subscribe({ "exit" }, function()
    local failed = inner.failuresCount + inner.errorsCount
    local line = string.format("%d passed, %d failed",
      inner.successesCount, failed)
    if inner.pendingsCount > 0 then
      line = line .. string.format(", %d skipped", inner.pendingsCount)
    end
    io.stdout:write("\n", line, "\n")
    io.stdout:flush()
    return nil, true
  end)

  return inner
end
