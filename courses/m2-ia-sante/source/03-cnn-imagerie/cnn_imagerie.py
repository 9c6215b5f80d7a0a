"""Petit CNN de détection de lésion sur des fantômes d'imagerie synthétiques.

Module du TP 03 (M2 « IA, sciences des données et santé »). Le notebook
``cnn_imagerie.ipynb`` l'importe ; il peut aussi s'exécuter seul, hors de tout
conteneur :

    python cnn_imagerie.py

génère les fantômes, entraîne le réseau sur CPU (ou GPU s'il y en a un) et
affiche l'exactitude sur le jeu de test.

Les « fantômes » sont des images 32 x 32 qui imitent grossièrement une coupe
de tissu mou : une texture de fond lissée, quelques structures linéaires
(« vaisseaux ») présentes dans toutes les images, un bruit d'acquisition
gaussien et, pour la classe 1 seulement, une lésion elliptique
hyperintense à bords flous. Tout est tiré d'un générateur pseudo-aléatoire à
graine fixe : les mêmes paramètres donnent exactement les mêmes images.

Dépendances : numpy, scipy (fourni avec scikit-learn) et torch. Pas de
torchvision, pas de réseau.
"""

from __future__ import annotations

import random
import time

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

TAILLE = 32
"""Côté des images en pixels."""

BRUIT_REFERENCE = 0.25
"""Écart-type du bruit d'acquisition du « scanner d'origine » (données d'entraînement)."""

CLASSES = ("absence de lésion", "lésion présente")


# ---------------------------------------------------------------------------
# Reproductibilité et matériel
# ---------------------------------------------------------------------------


def fixer_graines(graine: int = 0, threads: int | None = 1) -> None:
    """Fixe les graines de Python, NumPy et PyTorch (CPU et CUDA).

    Fixe aussi le nombre de threads CPU de PyTorch (1 par défaut ; ``None`` pour ne pas y
    toucher). Le réseau est minuscule : plusieurs threads ne l'accélèrent pas, le ralentissent
    même beaucoup sur une machine partagée (attente active d'OpenMP), et changent l'ordre des
    sommes flottantes, donc les résultats au dernier chiffre près. Avec un seul thread, les
    résultats sur CPU sont identiques d'une machine à l'autre.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    random.seed(graine)
    np.random.seed(graine)
    torch.manual_seed(graine)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(graine)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def choisir_device() -> torch.device:
    """GPU s'il y en a un, sinon CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------
# Données : fantômes synthétiques
# ---------------------------------------------------------------------------


def _fond(rng: np.random.Generator, taille: int) -> np.ndarray:
    """Texture de tissu mou : bruit basse fréquence + gradient d'intensité + vaisseaux."""
    texture = gaussian_filter(rng.normal(size=(taille, taille)), sigma=3.0)
    texture = 0.2 * texture / (texture.std() + 1e-8)
    yy, xx = np.mgrid[0:taille, 0:taille] / (taille - 1)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 0.15 * (np.cos(angle) * xx + np.sin(angle) * yy)
    image = texture + gradient
    # Deux ou trois « vaisseaux » fins et rectilignes, dans les deux classes :
    # le réseau doit apprendre la forme d'une lésion, pas « il y a du clair ».
    for _ in range(rng.integers(2, 4)):
        x0, y0 = rng.uniform(0, taille, size=2)
        theta = rng.uniform(0, np.pi)
        distance = np.abs((xx * (taille - 1) - x0) * np.sin(theta) - (yy * (taille - 1) - y0) * np.cos(theta))
        image += rng.uniform(0.3, 0.6) * np.exp(-0.5 * (distance / 0.6) ** 2)
    return image


def _lesion(rng: np.random.Generator, taille: int) -> np.ndarray:
    """Ellipse hyperintense à bords flous, position, taille, orientation et contraste aléatoires."""
    yy, xx = np.mgrid[0:taille, 0:taille].astype(float)
    cy, cx = rng.uniform(0.25 * taille, 0.75 * taille, size=2)
    a, b = rng.uniform(2.0, 4.5, size=2)
    phi = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)
    v = -(xx - cx) * np.sin(phi) + (yy - cy) * np.cos(phi)
    rayon = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    profil = 1.0 / (1.0 + np.exp((rayon - 1.0) / 0.15))  # bord flou (sigmoïde)
    return rng.uniform(0.8, 1.3) * profil


def generer_fantomes(n: int, graine: int = 0, bruit=BRUIT_REFERENCE, taille: int = TAILLE):
    """Génère ``n`` fantômes équilibrés (moitié avec lésion, moitié sans).

    Renvoie ``(X, y)`` : ``X`` tenseur float32 de forme ``(n, 1, taille, taille)``,
    standardisé image par image (moyenne 0, écart-type 1), et ``y`` tenseur int64
    de forme ``(n,)`` valant 1 si une lésion est présente, 0 sinon.

    ``bruit`` est l'écart-type du bruit d'acquisition gaussien (avant standardisation) :
    un nombre (le même pour toutes les images, un seul « scanner ») ou un couple
    ``(min, max)`` (tiré uniformément pour chaque image, plusieurs « scanners »).
    """
    if np.ndim(bruit) == 0:
        bruit_min = bruit_max = float(bruit)
    else:
        bruit_min, bruit_max = (float(b) for b in bruit)
    rng = np.random.default_rng(graine)
    etiquettes = np.zeros(n, dtype=np.int64)
    etiquettes[: n // 2] = 1
    rng.shuffle(etiquettes)
    images = np.empty((n, 1, taille, taille), dtype=np.float32)
    for i, etiquette in enumerate(etiquettes):
        image = _fond(rng, taille)
        if etiquette == 1:
            image = image + _lesion(rng, taille)
        sigma = bruit_min if bruit_min == bruit_max else rng.uniform(bruit_min, bruit_max)
        image = image + rng.normal(scale=sigma, size=image.shape)
        image = (image - image.mean()) / (image.std() + 1e-8)
        images[i, 0] = image
    return torch.from_numpy(images), torch.from_numpy(etiquettes)


# ---------------------------------------------------------------------------
# Modèle
# ---------------------------------------------------------------------------


class PetitCNN(nn.Module):
    """Trois blocs convolutifs puis un max-pooling global et une couche linéaire.

    Entrée : ``(lot, 1, H, W)`` ; sortie : ``(lot, 2)`` logits (absence, présence).
    Le max-pooling global rend la décision indépendante de la position de la lésion.
    """

    def __init__(self, canaux: int = 8):
        super().__init__()
        self.extracteur = nn.Sequential(
            nn.Conv2d(1, canaux, kernel_size=3, padding=1),
            nn.BatchNorm2d(canaux),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(canaux, 2 * canaux, kernel_size=3, padding=1),
            nn.BatchNorm2d(2 * canaux),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * canaux, 4 * canaux, kernel_size=3, padding=1),
            nn.BatchNorm2d(4 * canaux),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(1),
        )
        self.classifieur = nn.Linear(4 * canaux, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifieur(torch.flatten(self.extracteur(x), 1))


# ---------------------------------------------------------------------------
# Entraînement et évaluation
# ---------------------------------------------------------------------------


def entrainer(modele, X, y, epoques: int = 8, taille_lot: int = 32, lr: float = 5e-3, graine: int = 0,
              device: torch.device | None = None, verbeux: bool = False) -> list[float]:
    """Entraîne ``modele`` (Adam, entropie croisée) et renvoie la perte moyenne de chaque époque.

    L'ordre des mini-lots est tiré d'un ``torch.Generator`` à graine fixe : deux appels
    identiques donnent le même modèle (à l'arrondi flottant près).
    """
    device = device or choisir_device()
    modele.to(device).train()
    optimiseur = torch.optim.Adam(modele.parameters(), lr=lr)
    critere = nn.CrossEntropyLoss()
    generateur = torch.Generator().manual_seed(graine)
    historique = []
    for epoque in range(epoques):
        ordre = torch.randperm(len(X), generator=generateur)
        total, vus = 0.0, 0
        for debut in range(0, len(X), taille_lot):
            indices = ordre[debut : debut + taille_lot]
            xb, yb = X[indices].to(device), y[indices].to(device)
            optimiseur.zero_grad()
            perte = critere(modele(xb), yb)
            perte.backward()
            optimiseur.step()
            total += perte.item() * len(indices)
            vus += len(indices)
        historique.append(total / vus)
        if verbeux:
            print(f"époque {epoque + 1}/{epoques} : perte moyenne {historique[-1]:.4f}")
    return historique


@torch.no_grad()
def predire_probas(modele, X, device: torch.device | None = None, taille_lot: int = 256) -> torch.Tensor:
    """Probabilité (softmax) de la classe « lésion présente » pour chaque image, sur CPU."""
    device = device or choisir_device()
    modele.to(device).eval()
    sorties = [torch.softmax(modele(X[i : i + taille_lot].to(device)), dim=1)[:, 1].cpu()
               for i in range(0, len(X), taille_lot)]
    return torch.cat(sorties)


def exactitude(modele, X, y, device: torch.device | None = None) -> float:
    """Proportion d'images bien classées (seuil de probabilité 0,5)."""
    predictions = (predire_probas(modele, X, device) >= 0.5).long()
    return (predictions == y.cpu()).float().mean().item()


def experience(n_entrainement: int = 1200, n_test: int = 400, epoques: int = 8, graine: int = 0,
               verbeux: bool = False):
    """L'expérience de référence du TP : renvoie ``(modele, historique, exactitude_test)``."""
    fixer_graines(graine)
    X_train, y_train = generer_fantomes(n_entrainement, graine=graine)
    X_test, y_test = generer_fantomes(n_test, graine=graine + 1)
    modele = PetitCNN()
    historique = entrainer(modele, X_train, y_train, epoques=epoques, graine=graine, verbeux=verbeux)
    return modele, historique, exactitude(modele, X_test, y_test)


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Entraîne le petit CNN sur les fantômes et affiche l'exactitude.")
    parser.add_argument("--epoques", type=int, default=8, help="nombre d'époques (8 par défaut)")
    parser.add_argument("--graine", type=int, default=0, help="graine aléatoire (0 par défaut)")
    parser.add_argument("--n", type=int, default=1200, help="nombre d'images d'entraînement (1200 par défaut)")
    args = parser.parse_args(argv)

    debut = time.perf_counter()
    print(f"Matériel : {choisir_device()}")
    modele, historique, acc = experience(n_entrainement=args.n, epoques=args.epoques, graine=args.graine,
                                         verbeux=True)
    X_decale, y_decale = generer_fantomes(400, graine=args.graine + 2, bruit=2 * BRUIT_REFERENCE)
    acc_decale = exactitude(modele, X_decale, y_decale)
    print(f"Exactitude sur le jeu de test : {acc:.3f}")
    print(f"Exactitude sur un « autre scanner » (bruit x2) : {acc_decale:.3f}")
    print(f"Durée totale : {time.perf_counter() - debut:.1f} s")


if __name__ == "__main__":
    main()
