-- State-dict keys between PyTorch and scorch.  Both name a tensor by its
-- path of child names ("net.2.weight"); the only difference is that the
-- children of a Sequential (and ModuleList) are numbered from 0 in PyTorch
-- and from 1 here, as everything in Lua is.  So every purely numeric part of
-- a key moves by one; the tensors themselves are passed through untouched.
--
--   -- a PyTorch checkpoint saved with safetensors.torch.save_file
--   local sd = sc.load("model.safetensors", { convert = true })
--   net:load_state_dict(sc.nn.from_torch_state_dict(sd))
--   sc.save("back.safetensors", sc.nn.to_torch_state_dict(net:state_dict()))
--
-- A PyTorch module whose own attribute names differ from scorch's (say
-- "to_qkv" against "qkv") needs those renamed as well; the helpers do not
-- guess.
local M = {}

local function renumber(sd, shift, fn)
  if type(sd) ~= "table" then
    error(("scorch.nn.%s: expected a table name -> tensor (got %s)"):format(fn, type(sd)), 3)
  end
  local out = {}
  for key, value in pairs(sd) do
    if type(key) ~= "string" then
      error(("scorch.nn.%s: keys must be strings (got a %s)"):format(fn, type(key)), 3)
    end
    local parts = {}
    for part in (key .. "."):gmatch("([^.]*)%.") do
      if part:match("^%d+$") then
        local n = math.tointeger(tonumber(part)) + shift
        if n < 0 then
          error(("scorch.nn.%s: key '%s' has index 0, which a 1-based scorch key cannot hold"):format(fn, key), 3)
        end
        part = tostring(n)
      end
      parts[#parts + 1] = part
    end
    local new = table.concat(parts, ".")
    if out[new] ~= nil then error(("scorch.nn.%s: two keys map to '%s'"):format(fn, new), 3) end
    out[new] = value
  end
  return out
end

--- A PyTorch state dict with scorch's keys: each numeric part of a key (a
-- Sequential or ModuleList index, 0-based) plus one ("0.weight" ->
-- "1.weight", "net.2.bias" -> "net.3.bias").
-- @param sd table name -> tensor (e.g. from sc.load)
-- @return a new table with the same tensors under the new names
-- @usage net:load_state_dict(sc.nn.from_torch_state_dict(sc.load("torch.safetensors")))
function M.from_torch_state_dict(sd) return renumber(sd, 1, "from_torch_state_dict") end

--- The inverse: scorch's 1-based indices to PyTorch's 0-based ones.
-- @param sd table name -> tensor (e.g. model:state_dict())
-- @return a new table with the same tensors under PyTorch's names
-- @usage sc.save("for_torch.safetensors", sc.nn.to_torch_state_dict(net:state_dict()))
function M.to_torch_state_dict(sd) return renumber(sd, -1, "to_torch_state_dict") end

return M
