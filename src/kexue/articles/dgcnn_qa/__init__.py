"""DGCNN reading-comprehension QA (kexue.fm/archives/5409, 2018; re-release 6906, 2019).

Su's 2019 character-level DGCNN: gated dilated convolutions with a highway residual, attention
pooling of the question, global score x start/end heads, focal loss, RAdam with a debiased
weight EMA, the learning-rate drop with the reload of the best weights, and decoding with the
product score voted across passages; scored with the official Sogou metric (ported in
``kexue.metrics.sogou``). E3: product vs √ decoding, from the same model. Data: the SYNTHETIC
knowledge-base QA (default), the WebQA annotated sets (E6, mirror), SogouQA + WebQA (full).
Deviations: characters only (the frozen word2vec input is not available offline).
"""
