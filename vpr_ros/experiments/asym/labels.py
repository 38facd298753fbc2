"""The names the AsymVPR reports give their systems."""

LABELS = {
    'gallery_symmetric': 'gallery -> gallery (symmetric upper bound)',
    'ours_asym': 'ours: query net -> gallery DB',
    'ours_gamma0': 'ours without augmentation (gamma=0)',
    'ours_no_centroid': "ours without the centroid term (the paper's loss)",
    'ours_ramp': 'ours with the ISDA ramp of gamma (gamma * t / T)',
    'distill_asym': 'plain distillation (MSE to the gallery descriptor) -> gallery DB',
    'symmetric_student': 'query net alone (student -> student DB)',
    'csd_asym': 'CSD k-NN baseline: query net -> gallery DB',
    'untrained_asym': 'untrained query net -> gallery DB',
    'd2vpr_stage1': 'D2-VPR stage 1 (distilled to the gallery) -> gallery DB',
    'd2vpr': 'D2-VPR stages 1+2 -> gallery DB',
}


def label(tag: str) -> str:
    """The report's name of a system (``ours_bankNN``: ours trained on NN% of the places,
    ``symmetric_bankNN``: the student trained alone on the same places; ``<tag>_csls``: the
    system searched with the map-side hubness correction)."""
    if tag.endswith('_csls'):
        return f'{label(tag[:-5])} + hubness correction (CSLS)'
    for prefix, name, note in (('ours_bank', 'ours', 'smaller bank'),
                               ('symmetric_bank', 'query net alone', 'student -> student DB')):
        if tag.startswith(prefix) and tag[len(prefix):].isdigit():
            return f'{name} on {tag[len(prefix):]}% of the training places ({note})'
    return LABELS.get(tag, tag)
