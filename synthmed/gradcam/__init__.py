"""`synthmed gradcam`: class activation maps of a trained classifier, and how alike the maps of
synthetic images and their real origins are.

report     the command as a library call: plan, compute, write the report folder
cam        layer choice and the maps (pytorch-grad-cam)
pairs      which maps to compare and how alike they are
figures    overlays and pair figures
"""
