/* The Lua scripts of the store.  With the flush transaction of store.c
 * (which does what the flush script does, with the decisions taken by the
 * client under WATCH) they are the only code that writes state keys, so
 * their atomicity is the exactly-once guarantee: Redis runs a script to
 * completion with no other command in between.  Redis does NOT roll back a
 * script that fails half-way, so both scripts validate everything before
 * their first write.  Every key is passed in KEYS (Redis Cluster
 * requirement); all share the `{prefix}` hash tag.  A change to the flush
 * script must be made to flush_tx in store.c too: test_store.c checks that
 * both leave the same bytes in Redis. */
#ifndef SR_STORE_SCRIPTS_H
#define SR_STORE_SCRIPTS_H

/* Item number assignment.  KEYS: item:num (hash id -> number), item:id
 * (hash number -> id), item:seq (counter).  ARGV: item ids.  Returns the
 * numbers in ARGV order.  Idempotent: a number, once given, never changes. */
static const char sr_store_lua_assign[] =
    "local out = {}\n"
    "for i = 1, #ARGV do\n"
    "  local id = ARGV[i]\n"
    "  local n = redis.call('HGET', KEYS[1], id)\n"
    "  if not n then\n"
    "    n = redis.call('INCR', KEYS[3])\n"
    "    redis.call('HSET', KEYS[1], id, n)\n"
    "    redis.call('HSET', KEYS[2], n, id)\n"
    "  end\n"
    "  out[i] = tonumber(n)\n"
    "end\n"
    "return out\n";

/* Item updates per stream entry: one XADD per 64 items instead of one per
 * item (XADD was 40% of the flush script's time). */
#define SR_STORE_STREAM_CHUNK 64
#define SR_STORE_STR_(x) #x
#define SR_STORE_STR(x) SR_STORE_STR_(x)

/* The flush.  KEYS: 1 offsets hash, 2 popularity zset, 3 update stream,
 * 4 global, 5 update sequence counter, then n_users user keys, then n_items
 * item keys.  ARGV: 1 n_off, 2 n_users, 3 n_items, 4 stream maxlen in
 * entries, 5 has_global, 6 global blob, 7 '1' when ZMSCORE exists, then per offset (field, prev,
 * next), per user its blob, per item (id, number, base or "", cur
 * blob, write_pop, pop_base, pop_cur); a base is the item blob cut after
 * its floats (no extra_len, no extra); pop_base and pop_cur are "" when
 * they are equal (only compared then).  Returns {0, merged_1, pop_1, ...}
 * where merged_j is "" when cur was stored exactly, or {1} for a duplicate
 * flush; errors start with FENCED, BADITEM, DUPITEM or BADKEY and mean
 * nothing was written.
 * Redis commands are batched (MGET, MSET, multi-field HSET, multi-member
 * ZADD, chunked XADD) because each redis.call costs about a microsecond. */
static const char sr_store_lua_flush[] =
    "local n_off, n_u, n_i = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local CH = 2000\n"
    "local a = 8\n"
    "local n_prev, n_next = 0, 0\n"
    "for j = 1, n_off do\n"
    "  local f, prev, nxt = ARGV[a], ARGV[a+1], ARGV[a+2]\n"
    "  a = a + 3\n"
    "  if prev ~= '-2' then\n"
    "    local cur = redis.call('HGET', KEYS[1], f) or '-1'\n"
    "    if cur == prev and cur == nxt then\n"
    "    elseif cur == prev then n_prev = n_prev + 1\n"
    "    elseif cur == nxt then n_next = n_next + 1\n"
    "    else return redis.error_reply('FENCED partition ' .. f .. ' is stored at ' .. cur .."
    " ', this writer expected ' .. prev) end\n"
    "  end\n"
    "end\n"
    "if n_next > 0 then\n"
    "  if n_prev > 0 then return redis.error_reply('FENCED some partitions of this flush"
    " were already written') end\n"
    "  return {1}\n"
    "end\n"
    /* Keys of the wrong type would fail half-way through the writes. */
    "local want = {[1] = 'hash', [2] = 'zset', [3] = 'stream', [4] = 'string', [5] = 'string'}\n"
    "for k = 1, 5 do\n"
    "  local t = redis.call('TYPE', KEYS[k]).ok\n"
    "  if t ~= 'none' and t ~= want[k] then\n"
    "    return redis.error_reply('BADKEY ' .. KEYS[k] .. ' is a ' .. t .. ', not a ' .. want[k])\n"
    "  end\n"
    "end\n"
    "local sq = redis.call('GET', KEYS[5])\n"
    "if sq and not tonumber(sq) then return redis.error_reply('BADKEY ' .. KEYS[5] .. ' is not a number') end\n"
    "local ua = a\n"
    "local ia = a + n_u\n"
    "local ik = 5 + n_u\n"
    /* Pass 1: read and validate every stored item before writing anything. */
    "local stored = {}\n"
    "local lo = 1\n"
    "while lo <= n_i do\n"
    "  local hi = math.min(n_i, lo + CH - 1)\n"
    "  local got = redis.call('MGET', unpack(KEYS, ik + lo, ik + hi))\n"
    "  for j = lo, hi do stored[j] = got[j - lo + 1] end\n"
    "  lo = hi + 1\n"
    "end\n"
    "local function hdr(s)\n"
    "  if #s < 20 then return nil end\n"
    "  local v, k, d, n = struct.unpack('<BBHH', s)\n"
    "  if v ~= 1 or k ~= 73 or #s < 20 + 4 * (d + n) then return nil end\n"
    "  return d, n\n"
    "end\n"
    /* A base is an item blob cut after its floats (header, bias, vector,
     * accumulators; no extra): extras are last writer wins, so comparing
     * them would only cost bytes. */
    "local function hdr_base(s)\n"
    "  if #s < 16 then return nil end\n"
    "  local v, k, d, n = struct.unpack('<BBHH', s)\n"
    "  if v ~= 1 or k ~= 73 or #s ~= 16 + 4 * (d + n) then return nil end\n"
    "  return d, n\n"
    "end\n"
    /* Stored popularity of every item, one ZMSCORE per chunk (Redis >= 6.2,
     * ARGV[7] = '1') or one ZSCORE per item. */
    "local pops = {}\n"
    "if ARGV[7] == '1' then\n"
    "  local ids = {}\n"
    "  a = ia\n"
    "  for j = 1, n_i do ids[j] = ARGV[a]; a = a + 7 end\n"
    "  lo = 1\n"
    "  while lo <= n_i do\n"
    "    local hi = math.min(n_i, lo + CH - 1)\n"
    "    local got = redis.call('ZMSCORE', KEYS[2], unpack(ids, lo, hi))\n"
    "    for j = lo, hi do pops[j] = got[j - lo + 1] end\n"
    "    lo = hi + 1\n"
    "  end\n"
    "else\n"
    "  a = ia\n"
    "  for j = 1, n_i do\n"
    "    if ARGV[a+4] == '1' then pops[j] = redis.call('ZSCORE', KEYS[2], ARGV[a]) end\n"
    "    a = a + 7\n"
    "  end\n"
    "end\n"
    "a = ia\n"
    "local seen = {}\n"
    /* moved[j]: Redis holds item j and not the writer's base (someone else
     * wrote it meanwhile), so the write is a delta merge. */
    "local moved = {}\n"
    "for j = 1, n_i do\n"
    "  local id, base, cur = ARGV[a], ARGV[a+2], ARGV[a+3]\n"
    "  if seen[id] then return redis.error_reply('DUPITEM ' .. id .. ': twice in one flush') end\n"
    "  seen[id] = true\n"
    "  local cd, cn = hdr(cur)\n"
    "  if not cd then return redis.error_reply('BADITEM ' .. id .. ': bad blob') end\n"
    "  local s = stored[j]\n"
    "  if s and (#base == 0 or string.sub(s, 1, #base) ~= base) then\n"
    "    moved[j] = true\n"
    "    local sd, sn = hdr(s)\n"
    "    if sd ~= cd or sn ~= cn then return redis.error_reply('BADITEM ' .. id .."
    " ': stored dim/accumulators differ from this writer') end\n"
    "    if #base > 0 then\n"
    "      local bd, bn = hdr_base(base)\n"
    "      if bd ~= cd or bn ~= cn then return redis.error_reply('BADITEM ' .. id .. ': bad base') end\n"
    "    end\n"
    "  end\n"
    "  a = a + 7\n"
    "end\n"
    /* Pass 2: write. */
    "if n_off > 0 then\n"
    "  local h = {}\n"
    "  a = 8\n"
    "  for j = 1, n_off do h[#h+1] = ARGV[a]; h[#h+1] = ARGV[a+2]; a = a + 3 end\n"
    "  redis.call('HSET', KEYS[1], unpack(h))\n"
    "end\n"
    /* Counters instead of #t: the length operator searches the table. */
    "local kv, nkv = {}, 0\n"
    "local function flush_kv()\n"
    "  if nkv > 0 then redis.call('MSET', unpack(kv, 1, nkv)); kv = {}; nkv = 0 end\n"
    "end\n"
    "for j = 1, n_u do\n"
    "  kv[nkv+1] = KEYS[5+j]; kv[nkv+2] = ARGV[ua+j-1]; nkv = nkv + 2\n"
    "  if nkv >= CH then flush_kv() end\n"
    "end\n"
    "local out, nout = {0}, 1\n"
    "local seq = 0\n"
    "if n_i > 0 then seq = redis.call('INCRBY', KEYS[5], n_i) - n_i end\n"
    "local zadd, nz = {}, 0\n"
    "local ent, ne = {}, 0\n"
    "local CHUNK = " SR_STORE_STR(SR_STORE_STREAM_CHUNK) "\n"
    "a = ia\n"
    "for j = 1, n_i do\n"
    "  local id, num, base, cur = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3]\n"
    "  local wp, pb, pc = ARGV[a+4], ARGV[a+5], ARGV[a+6]\n"
    "  a = a + 7\n"
    "  local val, merged = cur, ''\n"
    "  if moved[j] then\n"
    /* stored + (cur - base), float by float, bias and accumulators included;
     * the header and extra bytes come from cur. */
    "    local s = stored[j]\n"
    "    local _, _, d, n = struct.unpack('<BBHH', cur)\n"
    "    local nf = 2 + d + n\n"
    "    local fmt = '<' .. string.rep('f', nf)\n"
    "    local sv = {struct.unpack(fmt, s, 9)}\n"
    "    local cv = {struct.unpack(fmt, cur, 9)}\n"
    "    if #base > 0 then\n"
    "      local bv = {struct.unpack(fmt, base, 9)}\n"
    "      for i = 1, nf do sv[i] = sv[i] + (cv[i] - bv[i]) end\n"
    "    else\n"
    "      for i = 1, nf do sv[i] = sv[i] + cv[i] end\n"
    "    end\n"
    "    val = string.sub(cur, 1, 8) .. struct.pack(fmt, unpack(sv, 1, nf)) .. string.sub(cur, 9 + 4 * nf)\n"
    "    merged = val\n"
    "  end\n"
    "  kv[nkv+1] = KEYS[ik+j]; kv[nkv+2] = val; nkv = nkv + 2\n"
    "  if nkv >= CH then flush_kv() end\n"
    "  local pop = ''\n"
    "  if wp == '1' then\n"
    "    local sp = pops[j]\n"
    "    if pc == pb then\n"
    /* Unchanged by this writer (e.g. a sampled negative): nothing to write. */
    "      pop = sp or '0'\n"
    "    elseif (sp and tonumber(sp) or 0) == tonumber(pb) then\n"
    "      zadd[nz+1] = pc; zadd[nz+2] = id; nz = nz + 2\n"
    "      pop = pc\n"
    "    else\n"
    "      pop = redis.call('ZINCRBY', KEYS[2], tonumber(pc) - tonumber(pb), id)\n"
    "    end\n"
    "    if nz >= CH then redis.call('ZADD', KEYS[2], unpack(zadd, 1, nz)); nz = 0 end\n"
    "  end\n"
    "  if ne == 0 then ent[1] = 'q'; ent[2] = seq + j; ne = 2 end\n"
    "  ent[ne+1] = id\n"
    "  if pop == '' then ent[ne+2] = num else ent[ne+2] = num .. ' ' .. pop end\n"
    "  ne = ne + 2\n"
    "  if ne >= 2 + 2 * CHUNK or j == n_i then\n"
    "    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', unpack(ent, 1, ne))\n"
    "    ne = 0\n"
    "  end\n"
    "  out[nout+1] = merged; out[nout+2] = pop; nout = nout + 2\n"
    "end\n"
    "flush_kv()\n"
    "if nz > 0 then redis.call('ZADD', KEYS[2], unpack(zadd, 1, nz)) end\n"
    "if ARGV[5] == '1' then redis.call('SET', KEYS[4], ARGV[6]) end\n"
    "return out\n";

#endif
