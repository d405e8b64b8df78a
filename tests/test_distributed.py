"""`SupConLoss(gather_distributed=True)` on 2 CPU processes (gloo) against one process on the concatenated batch.

Both ranks build the same global batch (float64) and keep their half. The claims, for labels, SimCLR, a float mask
(`[b, B]` rows) and `contrast_mode='one'`:
(a) the mean of the ranks' losses equals the single-process loss;
(b) (1 / world size) x each rank's gradient of its local features equals the single-process gradient of its slice,
    and an encoder's weight gradient averaged over ranks (what DDP does) equals the single-process one;
(c) a local-only loss, a gather without gradient (`dist.all_gather` into fresh tensors) and a gather whose backward
    skips the all-reduce each fail (a) or (b) by far more than the tolerance;
(d) unequal batch sizes raise an error naming every rank's shape, on every rank.
(e) chapter 11's `OrdinalSupConLoss` and `RankNContrastLoss` with `gather_distributed=True` meet (a) and (b) too.
The two workers run once per session (`torch.multiprocessing` spawn); each test reads their saved results."""
import gc, os, socket, warnings
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

W, B, V, D, D_IN = 2, 12, 2, 16, 8          # 2 ranks x 6 images x 2 views
TOL = 1e-9
CASES = {                                     # name: (SupConLoss kwargs, uses labels / mask)
    'labels': (dict(), 'labels'),
    'simclr': (dict(), None),
    'mask': (dict(), 'mask'),
    'one': (dict(contrast_mode='one', temperature=0.2), 'labels'),
}
GATHERS = ('with_grad', 'torch_nn', 'no_grad', 'no_allreduce', 'local')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _batch():
    g = torch.Generator().manual_seed(0)
    f = F.normalize(torch.randn(B, V, D, generator=g, dtype=torch.float64), dim=-1)
    y = torch.randint(0, 3, (B,), generator=g)
    w = torch.rand(B, B, generator=g, dtype=torch.float64) * (torch.rand(B, B, generator=g) < 0.5)
    x = torch.randn(B, V, D_IN, generator=g, dtype=torch.float64)       # inputs of the DDP check
    return f, y, w, x

def _inputs(kind, y, w, rows, cols):
    if kind == 'labels': return dict(labels=y[rows])
    if kind == 'mask': return dict(mask=w[rows][:, cols])
    return {}

def _encoder():
    torch.manual_seed(1); return nn.Linear(D_IN, D, dtype=torch.float64)


# ---- what each rank runs -------------------------------------------------------------------------------------------

def _gather_no_grad(t):
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)

class _GatherOwnSliceOnly(torch.autograd.Function):
    "The GatherLayer bug: backward returns this rank's slice of its own gradient, without summing over ranks."
    @staticmethod
    def forward(ctx, t): ctx.n = len(t); return _gather_no_grad(t)
    @staticmethod
    def backward(ctx, g): r = dist.get_rank(); return g[r * ctx.n:(r + 1) * ctx.n]

def _torch_nn_gather(t):
    import torch.distributed.nn.functional as dist_nn
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')       # deprecated in torch 2.14
        return torch.cat(dist_nn.all_gather(t))

def _worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(W))
    torch.set_num_threads(1)
    import supcon_dr.losses as losses
    from supcon_dr.losses import SupConLoss
    from supcon_dr.distributed import all_gather_with_grad, init_distributed
    init_distributed('gloo')                # CPU tensors: gloo, also where CUDA exists (the default would be nccl)
    assert dist.get_backend() == 'gloo' and dist.get_world_size() == W
    real = losses.all_gather_with_grad
    swap = {'with_grad': real, 'torch_nn': _torch_nn_gather, 'no_grad': _gather_no_grad,
            'no_allreduce': _GatherOwnSliceOnly.apply, 'local': real}
    f, y, w, x = _batch()
    b = B // W; mine = slice(rank * b, (rank + 1) * b)
    out = {}
    for case, (kw, kind) in CASES.items():
        for name in GATHERS:
            losses.all_gather_with_grad = swap[name]
            try:
                local = name == 'local'
                feats = f[mine].clone().requires_grad_()
                crit = SupConLoss(gather_distributed=not local, **kw)
                loss = crit(feats, **_inputs(kind, y, w, mine, mine if local else slice(None)))
                loss.backward()
            finally: losses.all_gather_with_grad = real
            out[case, name] = (loss.item(), feats.grad)
    # the weight gradient of a small linear encoder, averaged over ranks as DDP does (DDP itself is left out: its
    # constructor imports torch._dynamo, seconds per process; the notebook's torchrun demo runs the real DDP)
    net = _encoder()
    loss = SupConLoss(gather_distributed=True)(F.normalize(net(x[mine]), dim=-1), labels=y[mine])
    loss.backward()
    for p in net.parameters(): dist.all_reduce(p.grad); p.grad /= W
    out['ddp'] = (loss.item(), [p.grad for p in net.parameters()])
    # the gather's backward on its own: L_r = sum(G * c_r) with rank-dependent c_r => dL/dx_s = sum_r c_r[rows of s]
    t = torch.full((3, 2), float(rank + 1), dtype=torch.float64, requires_grad=True)
    c = torch.arange(W * 6, dtype=torch.float64).reshape(W * 3, 2) * (rank + 1)
    gathered = all_gather_with_grad(t)
    (gathered * c).sum().backward()
    out['unit'] = (gathered.detach(), t.grad)
    # a collapsed embedding scores the collapse value of the global batch
    out['collapsed'] = SupConLoss(gather_distributed=True)(f[0, 0].expand(B // W, V, D), labels=y[mine]).item()
    # chapter 11's losses gather too: ordinal SupCon (mask rows of the global batch) and Rank-N-Contrast (anchor rows)
    from supcon_dr.ordinal import OrdinalSupConLoss, RankNContrastLoss
    for name, crit in (('ordinal', OrdinalSupConLoss('linear', power=2.0, gather_distributed=True)),
                       ('rnc', RankNContrastLoss(temperature=0.5, gather_distributed=True)),
                       ('rnc_local', RankNContrastLoss(temperature=0.5))):
        feats = f[mine].clone().requires_grad_()
        loss = crit(feats, y[mine]); loss.backward()
        out[name] = (loss.item(), feats.grad)
    # unequal batch sizes (last: the ranks leave no collective behind)
    try: SupConLoss(gather_distributed=True)(f[:4 - rank], labels=y[:4 - rank]); out['unequal'] = None
    except ValueError as e: out['unequal'] = str(e)
    try: SupConLoss(gather_distributed=True)(f[mine], mask=w[mine][:, mine]); out['bad_mask'] = None
    except ValueError as e: out['bad_mask'] = str(e)
    torch.save(out, os.path.join(out_dir, f'rank{rank}.pt'))
    gc.collect(); dist.barrier()          # no rank tears the group down while another still uses it (else gloo
                                          # aborted a rank at exit now and then)
    dist.destroy_process_group()


# ---- the single-process reference and the tests --------------------------------------------------------------------

@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=W, start_method='spawn', join=True)
    return [torch.load(out / f'rank{r}.pt', weights_only=False) for r in range(W)]

def _reference(case):
    from supcon_dr.losses import SupConLoss
    kw, kind = CASES[case]
    f, y, w, _ = _batch()
    feats = f.clone().requires_grad_()
    loss = SupConLoss(**kw)(feats, **_inputs(kind, y, w, slice(None), slice(None)))
    loss.backward()
    return loss.item(), feats.grad

def _errors(ranks, case, name):
    "(|mean of the ranks' losses - reference|, max |grad_r / W - reference slice|)."
    ref_loss, ref_grad = _reference(case)
    b = B // W
    mean_loss = sum(r[case, name][0] for r in ranks) / W
    grad_err = max((r[case, name][1] / W - ref_grad[i * b:(i + 1) * b]).abs().max().item() for i, r in enumerate(ranks))
    return abs(mean_loss - ref_loss), grad_err

@pytest.mark.parametrize('case', CASES)
def test_gathered_loss_and_gradient_equal_one_process(ranks, case):
    loss_err, grad_err = _errors(ranks, case, 'with_grad')
    assert loss_err < TOL and grad_err < TOL, (loss_err, grad_err)

@pytest.mark.parametrize('case', CASES)
def test_torch_nn_all_gather_agrees_on_gloo(ranks, case):
    "PyTorch's (deprecated) differentiable all_gather computes the same gradient on gloo."
    loss_err, grad_err = _errors(ranks, case, 'torch_nn')
    assert loss_err < TOL and grad_err < TOL, (loss_err, grad_err)

@pytest.mark.parametrize('case', CASES)
def test_wrong_gathers_fail_the_equivalence(ranks, case):
    local_loss, local_grad = _errors(ranks, case, 'local')
    assert local_loss > 1e3 * TOL and local_grad > 1e3 * TOL, (local_loss, local_grad)        # fails (a) and (b)
    for name in ('no_grad', 'no_allreduce'):
        loss_err, grad_err = _errors(ranks, case, name)
        assert loss_err < TOL, (name, loss_err)                  # the forward value is right ...
        assert grad_err > 1e3 * TOL, (name, grad_err)            # ... the gradient is not

def test_rank_averaged_weight_gradient_equals_one_process(ranks):
    from supcon_dr.losses import SupConLoss
    _, y, _, x = _batch()
    net = _encoder()
    ref = SupConLoss()(F.normalize(net(x), dim=-1), labels=y)
    ref.backward()
    assert abs(sum(r['ddp'][0] for r in ranks) / W - ref.item()) < TOL
    for r in ranks:                                               # the same averaged gradient on every rank
        for g, p in zip(r['ddp'][1], net.parameters()): assert (g - p.grad).abs().max() < TOL

def test_gather_backward_sums_over_ranks(ranks):
    c = [torch.arange(W * 6, dtype=torch.float64).reshape(W * 3, 2) * (r + 1) for r in range(W)]
    for s, r in enumerate(ranks):
        gathered, grad = r['unit']
        assert torch.equal(gathered, torch.cat([torch.full((3, 2), float(q + 1), dtype=torch.float64) for q in range(W)]))
        assert torch.equal(grad, sum(c)[s * 3:(s + 1) * 3])      # sum over ranks of this rank's rows

def test_unequal_batch_sizes_name_every_rank(ranks):
    for r in ranks:
        msg = r['unequal']
        assert msg is not None and 'same shape on every rank' in msg
        assert f'rank 0: (4, {V}, {D})' in msg and f'rank 1: (3, {V}, {D})' in msg, msg

def test_mask_must_cover_the_global_batch(ranks):
    for r in ranks:
        assert r['bad_mask'] is not None and '[local batch, global batch]' in r['bad_mask'] and f'({B // W}, {B})' in r['bad_mask']

def test_collapse_value_is_that_of_the_global_batch(ranks):
    from supcon_dr.losses import supcon_collapse_value
    for r in ranks: assert abs(r['collapsed'] - supcon_collapse_value(B, V)) < TOL
    assert abs(supcon_collapse_value(B, V) - supcon_collapse_value(B // W, V)) > 0.5      # the local value is another

@pytest.mark.parametrize('name', ['ordinal', 'rnc'])
def test_ordinal_losses_gathered_equal_one_process(ranks, name):
    "Ordinal SupCon and Rank-N-Contrast under gather_distributed: the same loss and gradient as one process (chapter 11)."
    from supcon_dr.ordinal import OrdinalSupConLoss, RankNContrastLoss
    f, y, _, _ = _batch()
    feats = f.clone().requires_grad_()
    crit = OrdinalSupConLoss('linear', power=2.0) if name == 'ordinal' else RankNContrastLoss(temperature=0.5)
    ref = crit(feats, y); ref.backward()
    b = B // W
    assert abs(sum(r[name][0] for r in ranks) / W - ref.item()) < TOL
    for i, r in enumerate(ranks): assert (r[name][1] / W - feats.grad[i * b:(i + 1) * b]).abs().max() < TOL

def test_rnc_local_only_differs(ranks):
    "Without the gather, RnC ranks each anchor among its rank's samples only: another loss."
    from supcon_dr.ordinal import RankNContrastLoss
    f, y, _, _ = _batch()
    ref = RankNContrastLoss(temperature=0.5)(f, y).item()
    assert abs(sum(r['rnc_local'][0] for r in ranks) / W - ref) > 1e3 * TOL
