"""Sentence similarity as classification with AM-Softmax (基于GRU和AM-Softmax的句子相似度模型,
kexue.fm/archives/5743, 2018-07-29).

A GRU sentence encoder is trained as a classifier over groups of synonymous sentences, with the
classifier's class vectors kept at unit norm, under three losses: the scaled-cosine softmax,
AM-Softmax (s = 30, m = 0.35) and Su's simpler A-Softmax. The classifier is then dropped and the
encoder is evaluated by open-set top-1/5/10 retrieval inside held-out groups. Reproduced: the
ordering AM > simpler-A > softmax at top-1 (Su: 0.9172 / 0.9135 / 0.9077), with seed spread,
and the training-set accuracy (Su: 90 %+). Default data: SYNTHETIC paraphrase groups; real
data: LCQMC positive-pair components (mirror or user folder) or Su's tongyiju.csv (user folder).
"""
