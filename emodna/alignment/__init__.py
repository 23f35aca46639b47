"""Alignment terms, one module per method (the layout of thuml's Transfer-Learning-Library):

- ``decoupling``: Emo-DNA's prototype contrastive decoupling, Eqs. (4)-(5)
- ``supcon``: Emo-DNA's adaptive threshold (6)-(8) and supervised contrastive loss (9)
- ``mmd``: multi-kernel MMD (DAN), Emo-DNA's Eq. (10)
- ``jan``: joint MMD (JAN)
- ``dann``: gradient reversal, domain discriminator, DANN
- ``cdan``: CDAN
- ``bsp``: batch spectral penalization

Each loss is a small ``nn.Module`` with its math in the docstring; ``emodna.methods`` says
which a method turns on. The source classification terms live in ``emodna.losses``.
"""
