# UperNet on GFNet-H: mmseg's Swin UperNet model (SegDataPreProcessor; UPerHead on the four stages
# with 512 channels and pool scales 1/2/3/6; an auxiliary FCNHead on stage 3 (index 2) with loss
# weight 0.4; SyncBN in the heads) with the Swin backbone replaced by GFNet-H-Ti. The sizes (h-s,
# h-b), the drop path rate and the crop the filters are built for are set by each config in
# configs/upernet.
_base_ = ['mmseg::_base_/models/upernet_swin.py']
custom_imports = dict(imports=['gfnet_seg'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='GFNetH',
        arch='h-ti',
        img_size=512,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/gfnet-h-ti.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
