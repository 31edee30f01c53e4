#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_session (tests/fuzz/corpus/session): named pipelines in the
target's bytecode (see decode_op in fuzz_session.c), each in a few variants (the first byte:
pool mode, prepared-statement cache, slow client). Usage: session_seeds.py DIR"""
import os, sys, zlib
out = sys.argv[1]
# Ops: name, np (parameters), t (text kind: 0-3 rows, 4 err, 5 fail, 6 begin, 7 commit/rollback,
# 8 copy out, 9 copy in), a, b (rows, size index), pad (size index of padding).
def P(name, np, t, a=0, b=0, pad=0): return [0, name, np, t, a, b, pad]
def B(portal, stmt, c=0, sz=0): return [1, portal, stmt, c, sz]
def D(stmt, name): return [2, (name << 1) | (1 if stmt else 0)]
def E(portal, maxrows=None): return [3, portal if maxrows is None else (0x80 | (maxrows << 3) | portal)]
def C(stmt, name): return [4, (name << 1) | (1 if stmt else 0)]
S=[5]; H=[6]
def Q(t, a=0, b=0, pad=0): return [7, t, a, b, pad]
def X(name, t, a=0, b=0, pad=0): return [8, name, t, a, b, pad]
def CD(sz): return [9, sz]
def CE(done=True): return [10, 1 if done else 0]
def BE(portal, stmt): return [11, (stmt << 2) | portal]
seqs = {
 'parse_bind_exec': P(1,0,0,3,2)+B(0,1)+E(0)+S,
 'unnamed_exec_params': X(0,0,5,3)+X(0,1,2,4),
 'describe_both': P(1,1,0,2,3)+D(True,1)+B(1,1)+D(False,1)+E(1)+S,
 'describe_nodata': P(2,0,6)+D(True,2)+B(0,2)+D(False,0)+E(0)+S+Q(7,1),
 'reuse_named': P(1,0,0,5,2)+S+BE(0,1)+S+BE(1,1)+BE(2,1)+S+C(True,1)+S+BE(0,1)+S,
 'close_and_reparse': P(1,0,0,1,1)+C(True,1)+P(1,0,1,2,2)+B(0,1)+E(0)+S,
 'dup_parse_42P05': P(1,0,0,1,1)+P(1,0,0,2,2)+B(0,1)+E(0)+S+BE(0,1)+S,
 'bind_missing_26000': B(0,3)+E(0)+S+P(3,0,0,1,1)+B(0,3)+E(0)+S,
 'parse_error_skip': P(1,0,4)+B(0,1)+E(0)+P(2,0,0,1,1)+S+P(2,0,0,1,1)+B(0,2)+E(0)+S,
 'exec_error_skip': P(1,0,5)+B(0,1)+E(0)+BE(0,1)+S+X(0,0,3,3),
 'wrong_param_count': P(1,2,0,1,1)+B(0,1,241)+E(0)+S+B(0,1)+E(0)+S,
 'portal_suspended': P(1,0,0,30,2)+B(1,1)+E(1,3)+E(1,3)+E(1,0)+S,
 'portal_missing': E(2)+S+D(False,2)+S,
 'flush_mid': P(1,0,0,2,2)+H+B(0,1)+H+E(0)+H+S,
 'simple_queries': Q(0,3,3)+Q(4)+Q(5)+Q(1,0,0),
 'simple_empty_results': Q(0,0,0)+Q(8,0),
 'copy_out_simple': Q(8,20)+Q(0,1,1),
 'copy_out_extended': P(0,0,8,10)+B(0,0)+E(0)+S,
 'copy_in_simple': Q(9)+CD(5)+CD(6)+CE(True)+Q(0,1,1),
 'copy_in_fail': Q(9)+CD(5)+CE(False)+Q(0,1,1),
 'copy_in_extended_syncs': P(0,0,9)+B(0,0)+E(0)+S+CD(4)+S+CD(5)+CE(True)+S,
 'copy_in_extended_fail': P(0,0,9)+B(0,0)+E(0)+CD(4)+CE(False)+S+X(0,0,1,1),
 'copy_in_unexpected': Q(9)+CD(3)+P(1,0,0,1,1)+Q(0,1,1),
 'stray_copy_messages': CD(3)+CE(True)+CE(False)+S+Q(0,1,1),
 'txn_block': Q(6)+P(1,0,0,2,2)+B(0,1)+E(0)+S+Q(7,1),
 'txn_block_error': Q(6)+Q(5)+Q(0,1,1)+P(1,0,0,1,1)+S+Q(7,0)+BE(0,1)+S,
 'txn_extended_begin': X(0,6)+X(1,5)+X(2,7,1),
 'large_result_simple': Q(0,20,9),
 'large_result_extended': P(1,0,0,39,8)+B(0,1)+E(0)+S,
 'many_small_rows': Q(0,39,4)+Q(1,39,5),
 'large_query_text': Q(0,2,2,7),
 'large_parse_text': P(1,0,0,2,2,7)+B(0,1)+E(0)+S+BE(0,1)+S,
 'medium_parse_text': P(1,0,0,2,2,6)+B(0,1)+E(0)+S,
 'large_bind_params': P(1,2,0,1,1)+B(0,1,0,255)+E(0)+S,
 'many_statements_evict': sum((P(n,0,0,n,n)+S for n in (1,2,3)), [])+sum((BE(0,n)+S for n in (1,2,3,1,2,3)), []),
 'pipeline_no_sync_between': sum((P(0,0,0,i%5,3)+B(0,0)+E(0) for i in range(20)), [])+S,
 'sync_only': S+S+S,
 'close_portal_and_missing': P(1,0,0,1,1)+B(1,1)+C(False,1)+E(1)+S+C(True,3)+C(False,2)+S,
}
LARGE = {'large_result_simple': ('txn_ps200', 'session_slow', 'txn_ps200_2c'),
         'large_result_extended': ('txn_ps200', 'txn_ps200_slow', 'stmt_ps200', 'txn_ps2_lock')}
os.makedirs(out, exist_ok=True)
for name, ops in seqs.items():
    # first byte: mode = b % 3 (transaction, session, statement), cache = b / 3 % 3 (200, 0, 2),
    # slow client = b / 9 % 2, a second client (not in session mode) = b / 18 % 2,
    # lockstep = b / 36 % 2
    variants = [(0,'txn_ps200'),(3,'txn_nops'),(6,'txn_ps2'),(1,'session'),(2,'stmt_ps200'),(5,'stmt_nops'),(9,'txn_ps200_slow'),(10,'session_slow'),(18,'txn_ps200_2c'),(21,'txn_nops_2c'),(20,'stmt_ps200_2c'),(36,'txn_ps200_lock'),(54,'txn_ps200_2c_lock'),(42,'txn_ps2_lock')]
    for v, suffix in variants:
        # the large results take most of the replay's time: a few variants each
        if name in LARGE:
            if suffix not in LARGE[name]:
                continue
        elif (suffix not in ('txn_ps200',)) and not (zlib.crc32((name+suffix).encode()) % 4 == 0 or name in ('copy_in_extended_syncs','many_statements_evict','large_query_text','txn_block')):
            continue
        open(os.path.join(out, f'{name}-{suffix}'), 'wb').write(bytes([v]+ops))
